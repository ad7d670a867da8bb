"""The emulated Event Socket, driven with raw sockets and checked byte for byte."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from callkit import esl
from callsim.esl_server import EslServer
from callsim.switch import Callee, Switch

PASSWORD = "s3cret"


class RawClient:
    """A socket and the ESL framing, nothing else: replies and events as they arrive."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.parser = esl.MessageReader()
        self.pending: list[esl.Message] = []
        self.events: list[esl.Event] = []
        self.replies: list[esl.Message] = []

    async def send(self, raw: bytes) -> None:
        self.writer.write(raw)
        await self.writer.drain()

    async def next(self, wait_s: float = 5) -> esl.Message:
        while not self.pending:
            data = await asyncio.wait_for(self.reader.read(65536), wait_s)
            if not data:
                raise ConnectionError("closed")
            self.pending += self.parser.feed(data)
        return self.pending.pop(0)

    async def reply(self, wait_s: float = 5) -> esl.Message:
        """The next reply (command/reply, api/response, notices); events are kept aside."""
        if self.replies:
            return self.replies.pop(0)
        while True:
            message = await self.next(wait_s)
            if message.content_type and message.content_type.startswith("text/event"):
                self.events.append(esl.parse_event(message))
                continue
            return message

    async def event(self, name: str, wait_s: float = 5) -> esl.Event:
        while True:
            for i, event in enumerate(self.events):
                if event.name == name:
                    return self.events.pop(i)
            message = await self.next(wait_s)
            if message.content_type and message.content_type.startswith("text/event"):
                self.events.append(esl.parse_event(message))
            else:
                self.replies.append(message)

    async def closed(self) -> bool:
        try:
            return await asyncio.wait_for(self.reader.read(1), 5) == b""
        except ConnectionError:
            return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


CLIENTS: list[RawClient] = []


@pytest.fixture
async def switch() -> AsyncIterator[tuple[Switch, int]]:
    sw = Switch(hostname="callsim-test")
    server = EslServer(sw, PASSWORD, port=0)
    await server.start()
    yield sw, server.port
    while CLIENTS:
        await CLIENTS.pop().close()
    await server.close()


async def connect(port: int, password: str | None = PASSWORD) -> RawClient:
    client = RawClient(*await asyncio.open_connection("127.0.0.1", port))
    CLIENTS.append(client)
    assert (await client.next()).content_type == "auth/request"
    if password is not None:
        await client.send(f"auth {password}\n\n".encode())
        assert (await client.reply()).reply_text == "+OK accepted"
    return client


async def test_the_reference_session(switch) -> None:
    _, port = switch
    client = await connect(port)
    await client.send(
        b"event plain CHANNEL_CREATE BACKGROUND_JOB CUSTOM mod_audio_fork::connect\n\n"
    )
    assert (await client.reply()).reply_text == "+OK event listener enabled plain"
    await client.send(b"api create_uuid\n\n")
    reply = await client.reply()
    assert reply.content_type == "api/response"
    assert int(reply.get("Content-Length") or 0) == len(reply.body) == 36
    await client.send(b"bgapi uuid_exists nope\nJob-UUID: 9a2e0d4c-0000-4000-8000-000000000001\n\n")
    reply = await client.reply()
    assert reply.reply_text == "+OK Job-UUID: 9a2e0d4c-0000-4000-8000-000000000001"
    assert reply.get("Job-UUID") == "9a2e0d4c-0000-4000-8000-000000000001"
    job = await client.event("BACKGROUND_JOB")
    assert job.get("Job-UUID") == "9a2e0d4c-0000-4000-8000-000000000001"
    assert job.get("Job-Command") == "uuid_exists"
    assert job.body == "false"
    await client.send(b"exit\n\n")
    assert (await client.reply()).reply_text == "+OK bye"
    notice = await client.reply()
    assert notice.content_type == "text/disconnect-notice"
    assert notice.body == esl.DISCONNECT_TEXT.encode()
    assert await client.closed()


async def test_a_crash_cuts_every_connection_and_start_brings_the_socket_back() -> None:
    server = EslServer(Switch(hostname="callsim-test"), PASSWORD, port=0)
    await server.start()
    try:
        client = await connect(server.port)
        await server.crash()
        # The connection ends with nothing more on it, and nothing listens until start().
        with pytest.raises(ConnectionError):
            await client.next()
        with pytest.raises(ConnectionRefusedError):
            await connect(server.port)
        await server.start()
        again = await connect(server.port)
        await again.send(b"api create_uuid\n\n")
        assert len((await again.reply()).body) == 36
    finally:
        while CLIENTS:
            await CLIENTS.pop().close()
        await server.close()


async def test_a_wrong_password_is_refused_and_the_connection_closed(switch) -> None:
    _, port = switch
    client = await connect(port, password=None)
    await client.send(b"api status\n\n")
    assert (await client.reply()).reply_text == "-ERR command not found"
    await client.send(b"auth ClueCon\n\n")
    assert (await client.reply()).reply_text == "-ERR invalid"
    assert (await client.reply()).content_type == "text/disconnect-notice"
    assert await client.closed()


async def test_api_errors_are_text_in_an_api_response(switch) -> None:
    _, port = switch
    client = await connect(port)
    await client.send(b"api no_such_api now\n\n")
    assert (await client.reply()).body == b"-ERR no_such_api Command not found!\n"
    await client.send(b"api uuid_kill 00000000-0000-0000-0000-000000000000\n\n")
    assert (await client.reply()).body == b"-ERR No such channel!\n"
    await client.send(b"bogus\n\n")
    assert (await client.reply()).reply_text == "-ERR command not found"
    await client.send(b"event plain\n\n")
    assert (await client.reply()).reply_text == "-ERR no keywords supplied"


async def test_channel_events_and_hangup_cause(switch) -> None:
    sw, port = switch
    client = await connect(port)
    await client.send(b"event plain CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE\n\n")
    await client.reply()
    ch = sw.create_channel(
        direction="inbound",
        caller="+15551234567",
        destination="1000",
        variables={"sip_from_user": "15551234567"},
    )
    created = await client.event("CHANNEL_CREATE")
    assert created.get("Unique-ID") == ch.uuid
    assert created.get("Call-Direction") == "inbound"
    assert created.get("Caller-Caller-ID-Number") == "+15551234567"
    assert created.headers[0] == ("Event-Name", "CHANNEL_CREATE")
    assert [h for h, _ in created.headers[:13]][-1] == "Event-Sequence"
    await client.send(f"api uuid_answer {ch.uuid}\n\n".encode())
    await client.event("CHANNEL_ANSWER")
    await client.send(f"api uuid_setvar {ch.uuid} campaign 'spring sale'\n\n".encode())
    await client.send(f"api uuid_getvar {ch.uuid} campaign\n\n".encode())
    await client.send(f"api uuid_kill {ch.uuid} USER_BUSY\n\n".encode())
    bodies = [(await client.reply()).body for _ in range(3)]
    assert bodies == [b"+OK\n", b"+OK\n", b"spring sale"]
    done = await client.event("CHANNEL_HANGUP_COMPLETE")
    assert done.get("Hangup-Cause") == "USER_BUSY"
    assert (await client.reply()).body == b"+OK\n"  # uuid_kill
    await client.send(f"api uuid_exists {ch.uuid}\n\n".encode())
    assert (await client.reply()).body == b"false"


async def test_filters_are_a_whitelist_that_can_drop_background_jobs(switch) -> None:
    sw, port = switch
    client = await connect(port)
    await client.send(b"event plain ALL\n\n")
    await client.reply()
    ch = sw.create_channel(direction="outbound", caller="1000", destination="15551234567")
    await client.send(f"filter Unique-ID {ch.uuid}\n\n".encode())
    assert (await client.reply()).reply_text == f"+OK filter added. [Unique-ID]=[{ch.uuid}]"
    await client.send(b"bgapi create_uuid\n\n")
    await client.reply()
    with pytest.raises(TimeoutError):  # BACKGROUND_JOB has no Unique-ID: the filter drops it
        await client.event("BACKGROUND_JOB", wait_s=0.5)
    await client.send(b"filter Event-Name BACKGROUND_JOB\n\n")
    await client.reply()
    await client.send(b"bgapi create_uuid\n\n")
    await client.reply()
    assert len((await client.event("BACKGROUND_JOB")).body) == 36
    other = sw.create_channel(direction="inbound", caller="2000", destination="1000")
    sw.hangup(ch)
    assert (await client.event("CHANNEL_HANGUP")).get("Unique-ID") == ch.uuid  # not `other`
    assert other.uuid in sw.channels


async def test_custom_events_need_their_subclass(switch) -> None:
    sw, port = switch
    client = await connect(port)
    await client.send(b"event json CUSTOM mod_audio_fork::connect\n\n")
    assert (await client.reply()).reply_text == "+OK event listener enabled json"
    sw.fire(sw.event("CUSTOM", subclass="mod_audio_fork::play_audio"))
    sw.fire(sw.event("CUSTOM", subclass="mod_audio_fork::connect"))
    message = await client.next()
    assert message.content_type == "text/event-json"
    assert esl.parse_event(message).subclass == "mod_audio_fork::connect"
    with pytest.raises(TimeoutError):  # play_audio was not subscribed
        await client.next(wait_s=0.3)


LEG = "2c1f5b9e-6c43-4f5e-9a6e-0f5d8b6f7a11"


async def test_bgapi_originate_answers_parks_and_runs_api_on_answer(switch) -> None:
    sw, port = switch
    sw.callees["15551234567"] = Callee("answer", ring_s=0.1)
    client = await connect(port)
    await client.send(b"event plain CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_PARK BACKGROUND_JOB\n\n")
    await client.reply()
    line = (
        f"bgapi originate {{origination_uuid={LEG},originate_timeout=30,campaign_id=42,"
        f"api_on_answer='uuid_setvar {LEG} greeted yes'}}sofia/gateway/carrier/15551234567 &park()\n\n"
    )
    await client.send(line.encode())
    assert (await client.reply()).reply_text.startswith("+OK Job-UUID: ")
    created = await client.event("CHANNEL_CREATE")
    assert (created.get("Unique-ID"), created.get("Call-Direction")) == (LEG, "outbound")
    assert created.get("variable_campaign_id") == "42"
    await client.event("CHANNEL_ANSWER")
    await client.event("CHANNEL_PARK")
    job = await client.event("BACKGROUND_JOB")
    assert job.body == f"+OK {LEG}\n"
    assert sw.channels[LEG].variables["greeted"] == "yes"  # api_on_answer ran


@pytest.mark.parametrize(
    ("callee", "reply"),
    [
        (Callee("busy", 0.05), "-ERR USER_BUSY\n"),
        (Callee("reject"), "-ERR CALL_REJECTED\n"),
        (Callee("no_answer"), "-ERR NO_ANSWER\n"),
        (None, "-ERR UNALLOCATED_NUMBER\n"),  # the carrier answers 404 for a number nobody has
    ],
)
async def test_failed_originates_hang_up_with_the_cause(
    switch, callee: Callee | None, reply: str
) -> None:
    sw, port = switch
    if callee is not None:
        sw.callees["15550001111"] = callee
    client = await connect(port)
    await client.send(b"event plain CHANNEL_HANGUP_COMPLETE\n\n")
    await client.reply()
    await client.send(
        b"api originate {originate_timeout=1}sofia/gateway/carrier/15550001111 &park()\n\n"
    )
    assert (await client.reply(wait_s=5)).body.decode() == reply
    assert (await client.event("CHANNEL_HANGUP_COMPLETE")).get("Hangup-Cause") == reply[5:].strip()
    assert sw.channels == {}


async def test_originate_refuses_unexpanded_variables(switch) -> None:
    _, port = switch
    client = await connect(port)
    await client.send(
        b"api originate {api_on_answer=uuid_setvar ${uuid} a b}sofia/gateway/c/1 &park()\n\n"
    )
    assert (await client.reply()).body.startswith(b"-ERR")


def write_r16(path, seconds: float) -> str:
    import numpy as np

    t = np.arange(int(16000 * seconds)) / 16000
    path.write_bytes((6000 * np.sin(2 * np.pi * 300 * t)).astype("<i2").tobytes())
    return str(path)


async def test_sendmsg_playback_runs_in_real_time_with_its_events(switch, tmp_path) -> None:
    sw, port = switch
    ch = sw.create_channel(direction="inbound", caller="1", destination="2")
    short = write_r16(tmp_path / "short.r16", 0.3)
    client = await connect(port)
    await client.send(
        b"event plain CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE PLAYBACK_START PLAYBACK_STOP\n\n"
    )
    await client.reply()
    started = asyncio.get_running_loop().time()
    await client.send(
        f"sendmsg {ch.uuid}\ncall-command: execute\nexecute-app-name: playback\n"
        f"execute-app-arg: {short}\nevent-lock: true\nEvent-UUID: app-1\n\n".encode()
    )
    assert (await client.reply()).reply_text == "+OK"
    assert (await client.event("PLAYBACK_START")).get("Playback-File-Path") == short
    stop = await client.event("PLAYBACK_STOP")
    assert stop.get("Playback-Status") == "done"
    assert asyncio.get_running_loop().time() - started >= 0.28  # real time, not instant
    done = await client.event("CHANNEL_EXECUTE_COMPLETE")
    assert (done.get("Application-Response"), done.get("Application-UUID")) == (
        "FILE PLAYED",
        "app-1",
    )


async def test_uuid_break_all_stops_the_current_file_and_flushes_the_queue(
    switch, tmp_path
) -> None:
    sw, port = switch
    ch = sw.create_channel(direction="inbound", caller="1", destination="2")
    long = write_r16(tmp_path / "long.r16", 5.0)
    client = await connect(port)
    await client.send(b"event plain PLAYBACK_START PLAYBACK_STOP\n\n")
    await client.reply()
    for _ in range(2):
        await client.send(f"api uuid_broadcast {ch.uuid} {long} aleg\n\n".encode())
        assert (await client.reply()).body == b"+OK Message sent\n"
    await client.event("PLAYBACK_START")
    await client.send(f"api uuid_break {ch.uuid} all\n\n".encode())
    assert (await client.reply()).body == b"+OK\n"
    assert (await client.event("PLAYBACK_STOP", wait_s=1)).get("Playback-Status") == "break"
    with pytest.raises(TimeoutError):  # the queued second file never starts
        await client.event("PLAYBACK_START", wait_s=0.5)


async def test_sendmsg_errors(switch, tmp_path) -> None:
    sw, port = switch
    ch = sw.create_channel(direction="inbound", caller="1", destination="2")
    client = await connect(port)
    await client.send(b"event plain CHANNEL_EXECUTE_COMPLETE\n\n")
    await client.reply()
    await client.send(b"sendmsg not-a-uuid\ncall-command: execute\n\n")
    assert (await client.reply()).reply_text == "-ERR invalid session id [not-a-uuid]"
    await client.send(
        f"sendmsg {ch.uuid}\ncall-command: execute\nexecute-app-name: playback\n"
        f"execute-app-arg: {tmp_path}/missing.wav\n\n".encode()
    )
    await client.reply()
    done = await client.event("CHANNEL_EXECUTE_COMPLETE")
    assert done.get("Application-Response") == "FILE NOT FOUND"


async def test_callsim_serve_runs_the_event_socket(free_port: int) -> None:
    import os
    import signal
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "callsim",
        "serve",
        "--esl-port",
        str(free_port),
        "--esl-password",
        "pw",
        "--callee",
        "15550002222=busy:0.1",
        stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ),
    )
    try:
        assert proc.stderr is not None
        line = await asyncio.wait_for(proc.stderr.readline(), 30)
        assert f"Event Socket on 127.0.0.1:{free_port}" in line.decode()
        client = await connect(free_port, password="pw")
        await client.send(b"api originate sofia/gateway/carrier/15550002222 &park()\n\n")
        assert (await client.reply()).body == b"-ERR USER_BUSY\n"
        await client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0


async def test_callsim_serve_needs_a_password() -> None:
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "callsim",
        "serve",
        stderr=asyncio.subprocess.PIPE,
        env={k: v for k, v in __import__("os").environ.items() if k != "CALLSIM_ESL_PASSWORD"},
    )
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert b"--esl-password" in err
