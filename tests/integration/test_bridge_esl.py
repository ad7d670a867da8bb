"""The bridge's Event Socket client against the emulated FreeSWITCH: login, events, api and
bgapi, a refused password, reconnecting after the switch goes away, and staying in step when a
reply comes late or a command holds a line break."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from callkit.errors import DependencyUnavailable, InvalidInput
from callkit.esl import Command, CommandReader, Event, api_response, auth_request, command_reply
from callkit.redis_provision import free_port
from callsim.esl_server import EslServer
from callsim.switch import Switch
from fs_bridge.esl import EslClient


async def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 (polling what another task changes)
            await asyncio.sleep(0.02)


async def test_login_events_api_and_bgapi() -> None:
    switch = Switch()
    port = free_port()
    server = EslServer(switch, "s3cret", "127.0.0.1", port)
    await server.start()
    events: list[Event] = []
    client = EslClient("127.0.0.1", port, "s3cret", on_event=events.append)
    client.start()
    try:
        await asyncio.wait_for(client.connected.wait(), 10)
        ch = switch.create_channel(direction="inbound", caller="+1555", destination="100")
        switch.answer(ch)
        await _until(lambda: any(e.name == "CHANNEL_ANSWER" for e in events))
        assert not any(e.name == "CHANNEL_CREATE" for e in events)  # not subscribed
        assert (await client.api(f"uuid_exists {ch.uuid}")).strip() == "true"
        assert await client.api("uuid_break no-such-uuid") == "-ERR No such channel!\n"
        assert await client.bgapi(f"uuid_kill {ch.uuid}") == "+OK\n"
        await _until(lambda: any(e.name == "CHANNEL_HANGUP_COMPLETE" for e in events))
        hangup = next(e for e in events if e.name == "CHANNEL_HANGUP_COMPLETE")
        assert hangup.get("Hangup-Cause") == "NORMAL_CLEARING"
    finally:
        await client.close()
        await server.close()


async def test_a_wrong_password_never_connects_and_is_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    switch = Switch()
    port = free_port()
    server = EslServer(switch, "right", "127.0.0.1", port)
    await server.start()
    client = EslClient("127.0.0.1", port, "wrong-password-value", on_event=lambda e: None)
    client.start()
    try:
        await asyncio.sleep(1.0)
        assert not client.connected.is_set()
        reasons = [getattr(r, "reason", "") for r in caplog.records]
        assert any("refused the password (BRIDGE_ESL_PASSWORD)" in r for r in reasons)
        assert "wrong-password-value" not in caplog.text + " ".join(reasons)
    finally:
        await client.close()
        await server.close()


async def test_it_reconnects_when_the_switch_comes_back() -> None:
    port = free_port()
    switch = Switch()
    server = EslServer(switch, "pw", "127.0.0.1", port)
    await server.start()
    reconnected = asyncio.Event()

    async def on_connect() -> None:
        if client.connects >= 2:
            reconnected.set()

    client = EslClient("127.0.0.1", port, "pw", on_event=lambda e: None, on_connect=on_connect)
    client.start()
    try:
        await asyncio.wait_for(client.connected.wait(), 10)
        await server.close()  # FreeSWITCH restarts
        await _until(lambda: not client.connected.is_set())
        server = EslServer(switch, "pw", "127.0.0.1", port)
        await server.start()
        await asyncio.wait_for(reconnected.wait(), 15)
        assert (await client.api("create_uuid")).count("-") == 4
    finally:
        await client.close()
        await server.close()


class _LateSwitch:
    """An Event Socket that answers ``api`` commands in order, one of them too late."""

    def __init__(self, late_command: str, delay_s: float) -> None:
        self.late_command, self.delay_s = late_command, delay_s
        self.connections = 0
        self.commands: list[Command] = []
        self.port = free_port()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        parser = CommandReader()
        writer.write(auth_request())
        try:
            while data := await reader.read(65536):
                for cmd in parser.feed(data):
                    self.commands.append(cmd)
                    if cmd.name in ("auth", "event"):
                        writer.write(command_reply("+OK accepted"))
                    elif cmd.args == self.late_command:
                        await asyncio.sleep(self.delay_s)
                        writer.write(api_response(f"late answer to {cmd.args}\n"))
                    elif cmd.name == "bgapi":
                        writer.write(command_reply("+OK Job-UUID: " + (cmd.get("Job-UUID") or "")))
                    else:
                        writer.write(api_response(f"answer to {cmd.args}\n"))
                    await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


async def test_a_reply_that_comes_too_late_is_never_taken_for_the_next_command() -> None:
    switch = _LateSwitch("uuid_exists slow-call", delay_s=0.6)
    await switch.start()
    client = EslClient("127.0.0.1", switch.port, "pw", on_event=lambda e: None, reply_timeout_s=0.3)
    client.start()
    try:
        await asyncio.wait_for(client.connected.wait(), 10)
        with pytest.raises(DependencyUnavailable):
            await client.api("uuid_exists slow-call")
        await asyncio.sleep(0.5)  # the late answer arrives on the old connection, or nowhere
        await asyncio.wait_for(client.connected.wait(), 10)
        assert await client.api("uuid_exists live-call") == "answer to uuid_exists live-call\n"
        assert await client.api("create_uuid") == "answer to create_uuid\n"
        assert switch.connections == 2  # the client reconnected to stay in step
    finally:
        await client.close()
        await switch.close()


async def test_a_timed_out_background_job_leaves_no_entry_behind() -> None:
    switch = _LateSwitch("never", delay_s=0)
    await switch.start()
    client = EslClient("127.0.0.1", switch.port, "pw", on_event=lambda e: None)
    client.start()
    try:
        await asyncio.wait_for(client.connected.wait(), 10)
        with pytest.raises(TimeoutError):
            await client.bgapi("originate sofia/gateway/carrier/100 &park", timeout_s=0.2)
        assert client._jobs == {}
    finally:
        await client.close()
        await switch.close()


@pytest.mark.parametrize(
    ("call", "arg"),
    [
        ("api", "uuid_break abc\n\napi uuid_kill other"),
        ("bgapi", "uuid_kill abc\r\nexit"),
        ("playback", "/tmp/a.wav\nevent-lock: false"),
    ],
)
async def test_a_line_break_in_any_command_is_refused_before_it_reaches_the_switch(
    call: str, arg: str
) -> None:
    switch = _LateSwitch("never", delay_s=0)
    await switch.start()
    client = EslClient("127.0.0.1", switch.port, "pw", on_event=lambda e: None)
    client.start()
    try:
        await asyncio.wait_for(client.connected.wait(), 10)
        sent_before = len(switch.commands)
        attempt = {
            "api": lambda: client.api(arg),
            "bgapi": lambda: client.bgapi(arg),
            "playback": lambda: client.sendmsg_playback("abc", arg),
        }[call]
        with pytest.raises(InvalidInput):
            await attempt()
        assert await client.api("create_uuid") == "answer to create_uuid\n"
        assert [c.args for c in switch.commands[sent_before:]] == ["create_uuid"]
    finally:
        await client.close()
        await switch.close()
