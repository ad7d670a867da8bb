"""An asyncio Event Socket client: one connection, reconnect with backoff, api, bgapi, originate.

mod_event_socket answers commands strictly in the order they were sent and carries no id that
ties a reply to its command, so one command is in flight at a time and the next reply belongs to
it. Events arrive on the same socket between replies and are dispatched without ever holding a
reply back. A slow command (``originate``, ``uuid_kill``) would stall every command behind it, so
it goes out as ``bgapi``: the immediate reply carries a ``Job-UUID`` and the result comes later
as a ``BACKGROUND_JOB`` event with that ``Job-UUID``. The password never reaches a log. A dropped
connection is re-established with exponential backoff, after which the owner resyncs its calls
(``on_connect``), since events sent while it was away are lost.

Each service subscribes to its own events (``events``, the argument of ``event plain``: every
token after ``CUSTOM`` is a subclass, so ``CUSTOM …`` comes last) and names the setting its
password comes from, so a refused login says what to fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from callkit.errors import ConfigError, DependencyUnavailable, InvalidInput
from callkit.esl import Event, Message, MessageReader, command, parse_event
from callkit.retry import jittered

log = logging.getLogger("callkit.esl_client")
EventHandler = Callable[[Event], None]
OnConnect = Callable[[], Coroutine[Any, Any, None]]


class EslClient:
    def __init__(
        self,
        host: str,
        port: int,
        password: str,
        *,
        events: str,
        on_event: EventHandler,
        on_connect: OnConnect | None = None,
        password_setting: str = "the Event Socket password",
        connect_timeout_s: float = 5.0,
        reply_timeout_s: float = 10.0,
        max_backoff_s: float = 10.0,
    ) -> None:
        """``events`` is what ``event plain`` subscribes to after each login;
        ``password_setting`` names where the password comes from (``DIALER_ESL_PASSWORD``) in
        the message of a refused login."""
        if any(c in password for c in "\r\n"):
            raise ConfigError("the Event Socket password cannot contain a line break")
        if not events.strip():
            raise ConfigError("the Event Socket subscription needs at least one event name")
        self.host, self.port = host, port
        self._password = password
        self.events = events
        self.password_setting = password_setting
        self.on_event = on_event
        self.on_connect = on_connect
        self.connect_timeout_s = connect_timeout_s
        self.reply_timeout_s = reply_timeout_s
        self.max_backoff_s = max_backoff_s
        self.connected = asyncio.Event()
        self.connects = 0
        self._writer: asyncio.StreamWriter | None = None
        self._replies: asyncio.Queue[Message] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._jobs: dict[str, asyncio.Future[str]] = {}
        self._task: asyncio.Task[None] | None = None
        self._parser = MessageReader()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._drop()

    # ------------------------------------------------------------------ connection

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            try:
                reader = await self._connect()
                backoff = 0.2
                self.connects += 1
                self.connected.set()
                if self.on_connect is not None:
                    asyncio.get_running_loop().create_task(self.on_connect())
                await self._read(reader)
                log.warning("event socket closed by FreeSWITCH; reconnecting")
            except (OSError, TimeoutError, DependencyUnavailable) as exc:
                reason = (
                    exc.message if isinstance(exc, DependencyUnavailable) else type(exc).__name__
                )
                log.warning(
                    "event socket unavailable; retrying",
                    extra={"reason": reason, "retry_in_s": round(backoff, 2)},
                )
            finally:
                self.connected.clear()
                await self._drop()
            await asyncio.sleep(jittered(backoff))
            backoff = min(self.max_backoff_s, backoff * 2)

    async def _connect(self) -> asyncio.StreamReader:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), self.connect_timeout_s
        )
        self._writer = writer
        parser = MessageReader()
        pending: list[Message] = []

        async def next_message() -> Message:
            while not pending:
                data = await asyncio.wait_for(reader.read(65536), self.connect_timeout_s)
                if not data:
                    raise DependencyUnavailable("event socket closed during login")
                pending.extend(parser.feed(data))
            return pending.pop(0)

        # Login: the greeting, the password, then the subscription.
        hello = await next_message()
        if hello.content_type != "auth/request":
            raise DependencyUnavailable(f"unexpected greeting {hello.content_type!r}")
        writer.write(command(f"auth {self._password}"))
        reply = await next_message()
        if not (reply.reply_text or "").startswith("+OK"):
            raise DependencyUnavailable(
                f"event socket refused the password ({self.password_setting})"
            )
        writer.write(command(f"event plain {self.events}"))
        subscribed = await next_message()
        if not (subscribed.reply_text or "").startswith("+OK"):
            raise DependencyUnavailable(f"event subscription refused: {subscribed.reply_text}")
        log.info("event socket connected", extra={"host": self.host, "port": self.port})
        self._parser = parser
        for leftover in pending:
            self._dispatch(leftover)
        return reader

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                return
            for message in self._parser.feed(data):
                self._dispatch(message)

    def _dispatch(self, message: Message) -> None:
        kind = message.content_type
        if kind in ("command/reply", "api/response"):
            self._replies.put_nowait(message)
        elif kind == "text/event-plain":
            event = parse_event(message)
            if event.name == "BACKGROUND_JOB":
                job = self._jobs.pop(event.get("Job-UUID") or "", None)
                if job is not None and not job.done():
                    job.set_result(event.body)
            try:
                self.on_event(event)
            except Exception:
                log.exception("event handler failed", extra={"event_name": event.name})
        elif kind == "text/disconnect-notice":
            log.warning("event socket sent a disconnect notice")

    async def _drop(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        while not self._replies.empty():
            self._replies.get_nowait()
        for job in self._jobs.values():
            if not job.done():
                job.set_exception(DependencyUnavailable("event socket dropped"))
        self._jobs.clear()

    # ------------------------------------------------------------------ commands

    async def _command(self, line: str, headers: tuple[tuple[str, str], ...] = ()) -> Message:
        # Every write goes through callkit.esl.command, which refuses a line break in the line
        # or a header: a string reaching ESL can never smuggle in a second command.
        frame = command(line, headers)
        async with self._lock:
            writer = self._writer
            if writer is None or not self.connected.is_set():
                raise DependencyUnavailable("FreeSWITCH event socket is not connected")
            writer.write(frame)
            try:
                return await asyncio.wait_for(self._replies.get(), self.reply_timeout_s)
            except TimeoutError:
                # Replies carry no id: a late one would be taken for the next command's. Drop the
                # connection instead; the reconnect starts clean and the owner resyncs.
                self._abandon(writer)
                raise DependencyUnavailable(f"no reply to {line.split(' ')[0]!r}") from None

    def _abandon(self, writer: asyncio.StreamWriter) -> None:
        log.warning("event socket reply timed out; reconnecting to stay in step")
        self.connected.clear()
        while not self._replies.empty():
            self._replies.get_nowait()
        writer.close()

    async def api(self, command: str) -> str:
        """A quick API (``uuid_break``, ``uuid_exists``): its output text."""
        reply = await self._command(f"api {command}")
        return reply.text

    async def bgapi(self, command: str, timeout_s: float = 60.0) -> str:
        """A slow API (``originate``, ``uuid_kill``): runs in the background, result awaited.

        Raises TimeoutError when no ``BACKGROUND_JOB`` came within ``timeout_s`` (the job may
        still be running on the switch), DependencyUnavailable when the connection dropped.
        """
        job_id = str(uuid.uuid4())
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._jobs[job_id] = future
        try:
            reply = await self._command(f"bgapi {command}", (("Job-UUID", job_id),))
            if not (reply.reply_text or "").startswith("+OK"):
                return reply.reply_text or ""
            return await asyncio.wait_for(future, timeout_s)
        finally:
            self._jobs.pop(job_id, None)

    async def sendmsg_playback(self, call_uuid: str, path: str) -> None:
        """Play a file on the call, with event-lock so files play in the order sent."""
        await self._command(
            f"sendmsg {call_uuid}",
            (
                ("call-command", "execute"),
                ("execute-app-name", "playback"),
                ("execute-app-arg", path),
                ("event-lock", "true"),
            ),
        )

    async def originate(self, url_with_vars: str, target: str, *, timeout_s: float) -> str:
        """``bgapi originate <url_with_vars> <target>``: ``+OK <uuid>`` once the callee answered,
        or ``-ERR <CAUSE>`` (``USER_BUSY``, ``NO_ANSWER``, ``INVALID_GATEWAY``…), newline gone.

        ``url_with_vars`` is ``{name=value,…}sofia/gateway/<gateway>/<number>``; ``target`` is
        ``<exten> [<dialplan> [<context>]]`` (``outbound XML agent``) or ``&<app>(<args>)``.
        FreeSWITCH splits the whole line on spaces, so a space in ``url_with_vars`` outside a
        ``'…'`` section would shift every argument after it: it is refused here. ``timeout_s``
        bounds the wait for the result and must outlast the call's ``originate_timeout``; on
        TimeoutError the call's fate is unknown (check ``uuid_exists`` on its
        ``origination_uuid`` before dialling again).
        """
        if not url_with_vars or _unquoted_space(url_with_vars):
            raise InvalidInput(
                "the originate URL must be one argument: no spaces outside '…' (got "
                f"{len(url_with_vars)} characters)"
            )
        if not target.strip():
            raise InvalidInput("the originate target is empty (expected '<exten> XML <context>')")
        reply = await self.bgapi(f"originate {url_with_vars} {target.strip()}", timeout_s)
        return reply.strip()


def _unquoted_space(text: str) -> bool:
    quoted = False
    for ch in text:
        if ch == "'":
            quoted = not quoted
        elif ch.isspace() and not quoted:
            return True
    return False
