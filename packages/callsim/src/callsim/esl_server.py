"""The inbound Event Socket of the emulated switch (mod_event_socket's session rules).

Protocol steps per connection: send ``auth/request``; ``auth <password>`` answers
``+OK accepted`` or ``-ERR invalid`` followed by the disconnect notice and a close; before auth
every other command is ``-ERR command not found``. Then: ``event`` subscriptions (plain or json;
every token after ``CUSTOM`` is a subclass; ``ALL``), ``nixevent``/``noevents``, ``filter``
(a whitelist across the connection, ``/regex`` values, ``filter delete``), ``api`` (synchronous:
nothing else on the connection is handled until it returns), ``bgapi`` (the Job-UUID at once, the
output later in a BACKGROUND_JOB event), ``exit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from callkit import esl
from callkit.esl import Command, Event
from callsim.switch import Switch

log = logging.getLogger("callsim.esl")
MAX_QUEUE = 100_000


@dataclass
class Subscription:
    fmt: str = "plain"
    events: set[str] = field(default_factory=set)
    subclasses: set[str] = field(default_factory=set)
    all_events: bool = False
    filters: list[tuple[str, str]] = field(default_factory=list)

    def wants(self, event: Event) -> bool:
        name = event.name or ""
        if not self.all_events:
            if name == "CUSTOM":
                # CUSTOM events go out only for subclasses that were listed.
                if (event.subclass or "") not in self.subclasses:
                    return False
            elif name not in self.events:
                return False
        return self._passes_filters(event)

    def _passes_filters(self, event: Event) -> bool:
        if not self.filters:
            return True
        allowed = False
        for header, value in self.filters:
            negative = value.startswith("-")
            expected = value[1:] if negative else value
            actual = event.get(header)
            if actual is None:
                continue
            if expected.startswith("/"):
                match = re.search(expected.strip("/"), actual) is not None
            else:
                match = actual.lower() == expected.lower()
            if match and negative:
                return False
            if match:
                allowed = True
        return allowed


class EslConnection:
    def __init__(
        self,
        switch: Switch,
        password: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.switch = switch
        self.password = password
        self.reader = reader
        self.writer = writer
        self.authed = False
        self.sub = Subscription()
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(MAX_QUEUE)
        self.subscribed = False
        self.jobs: set[asyncio.Task[None]] = set()

    def deliver(self, event: Event) -> None:
        if not self.authed or not self.subscribed or not self.sub.wants(event):
            return
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(
                esl.event_message(event.headers, event.body or None, fmt=self.sub.fmt)
            )

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def run(self) -> None:
        self.switch.listeners.append(self.deliver)
        pump = asyncio.create_task(self._pump())
        parser = esl.CommandReader()
        try:
            await self.send(esl.auth_request())
            while data := await self.reader.read(65536):
                try:
                    commands = parser.feed(data)
                except esl.EslProtocolError:
                    return  # FreeSWITCH drops a connection that breaks the framing
                for cmd in commands:
                    if not await self.handle(cmd):
                        return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.switch.listeners.remove(self.deliver)
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    async def _pump(self) -> None:
        while True:
            await self.send(await self.queue.get())

    async def handle(self, cmd: Command) -> bool:
        """Answer one command; False ends the connection."""
        if not self.authed:
            if cmd.name != "auth":
                await self.send(esl.command_reply("-ERR command not found"))
                return True
            if cmd.args.strip() != self.password:
                await self.send(esl.command_reply("-ERR invalid"))
                await self.send(esl.disconnect_notice())
                return False
            self.authed = True
            await self.send(esl.command_reply("+OK accepted"))
            return True
        handler = getattr(self, f"cmd_{cmd.name}", None)
        if handler is None:
            await self.send(esl.command_reply("-ERR command not found"))
            return True
        result: bool = await handler(cmd)
        return result

    async def cmd_sendmsg(self, cmd: Command) -> bool:
        return await _sendmsg(self, cmd)

    async def cmd_exit(self, cmd: Command) -> bool:
        await self.send(esl.command_reply("+OK bye"))
        await self.send(esl.disconnect_notice())
        return False

    async def cmd_event(self, cmd: Command) -> bool:
        tokens = cmd.args.split()
        if tokens and tokens[0].lower() in ("plain", "json", "xml"):
            self.sub.fmt = tokens.pop(0).lower()
        if not tokens:
            await self.send(esl.command_reply("-ERR no keywords supplied"))
            return True
        custom = False
        for token in tokens:
            if custom:
                self.sub.subclasses.add(token)  # every token after CUSTOM is a subclass
            elif token.upper() == "ALL":
                self.sub.all_events = True
            elif token.upper() == "CUSTOM":
                custom = True
                self.sub.events.add("CUSTOM")
            else:
                self.sub.events.add(token.upper())
        self.subscribed = True
        await self.send(esl.command_reply(f"+OK event listener enabled {self.sub.fmt}"))
        return True

    async def cmd_nixevent(self, cmd: Command) -> bool:
        for token in cmd.args.split():
            self.sub.events.discard(token.upper())
            self.sub.subclasses.discard(token)
        await self.send(esl.command_reply("+OK events nixed"))
        return True

    async def cmd_noevents(self, cmd: Command) -> bool:
        self.sub = Subscription(fmt=self.sub.fmt, filters=self.sub.filters)
        self.subscribed = False
        await self.send(esl.command_reply("+OK no longer listening for events"))
        return True

    async def cmd_filter(self, cmd: Command) -> bool:
        parts = cmd.args.split(" ", 1)
        if parts[0].lower() == "delete":
            rest = parts[1].split(" ", 1) if len(parts) > 1 else []
            if rest and rest[0].lower() == "all":
                self.sub.filters.clear()
                await self.send(esl.command_reply("+OK filter deleted. [all]"))
                return True
            header = rest[0] if rest else ""
            value = rest[1] if len(rest) > 1 else None
            self.sub.filters = [
                (h, v)
                for h, v in self.sub.filters
                if not (h.lower() == header.lower() and (value is None or v == value))
            ]
            await self.send(esl.command_reply(f"+OK filter deleted. [{header}][{value or ''}]"))
            return True
        if len(parts) < 2:
            await self.send(esl.command_reply("-ERR invalid syntax"))
            return True
        header, value = parts[0], parts[1].strip()
        self.sub.filters.append((header, value))
        await self.send(esl.command_reply(f"+OK filter added. [{header}]=[{value}]"))
        return True

    async def cmd_api(self, cmd: Command) -> bool:
        name, _, args = cmd.args.partition(" ")
        # Synchronous, as in mod_event_socket: the connection waits for the API to return.
        output = await self.switch.api(name.strip(), args)
        await self.send(esl.api_response(output))
        return True

    async def cmd_bgapi(self, cmd: Command) -> bool:
        job = cmd.get("Job-UUID") or str(uuid.uuid4())
        name, _, args = cmd.args.partition(" ")
        await self.send(esl.command_reply(f"+OK Job-UUID: {job}", [("Job-UUID", job)]))

        async def run() -> None:
            output = await self.switch.api(name.strip(), args)
            self.switch.fire(
                self.switch.event(
                    "BACKGROUND_JOB",
                    [
                        ("Job-UUID", job),
                        ("Job-Owner-UUID", ""),
                        ("Job-Command", name.strip()),
                        ("Job-Command-Arg", args),
                    ],
                    output,
                )
            )

        task = asyncio.get_running_loop().create_task(run())
        self.jobs.add(task)  # keep a reference until it is done
        task.add_done_callback(self.jobs.discard)
        return True


async def _sendmsg(conn: EslConnection, cmd: Command) -> bool:
    target = cmd.args.strip()
    ch = conn.switch.channels.get(target)
    if ch is None:
        await conn.send(esl.command_reply(f"-ERR invalid session id [{target}]"))
        return True
    command = (cmd.get("call-command") or "").lower()
    if command == "execute":
        arg = cmd.get("execute-app-arg")
        if arg is None and cmd.body:
            arg = cmd.body.decode()
        conn.switch.execute(ch, cmd.get("execute-app-name") or "", arg or "", cmd.get("Event-UUID"))
    elif command == "hangup":
        conn.switch.hangup(ch, cmd.get("hangup-cause") or "NORMAL_CLEARING", by="sendmsg")
    await conn.send(esl.command_reply("+OK"))
    return True


class EslServer:
    def __init__(
        self, switch: Switch, password: str, host: str = "127.0.0.1", port: int = 8021
    ) -> None:
        self.switch = switch
        self.password = password
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, self.host, self.port)
        sockets: tuple[Any, ...] = tuple(self._server.sockets or ())
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await EslConnection(self.switch, self.password, reader, writer).run()
        except asyncio.CancelledError:
            # The emulator is shutting down with this connection open (asyncio cancels the
            # handler); ending quietly keeps asyncio's stream callback from logging a traceback.
            return
        finally:
            self._writers.discard(writer)

    async def crash(self) -> None:
        """The Event Socket gone as a crashed switch leaves it: no more listening, and every
        connection cut at once, what was still queued for it thrown away. ``start()`` brings it
        back."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await self._server.wait_closed()

    async def close(self) -> None:
        """Stop listening and drop every connection, as a FreeSWITCH shutting down does."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
