"""The emulated mod_audio_fork against a test WebSocket server: what a bridge would receive."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import websockets

from callkit.esl import Event
from callsim.switch import Switch

META = '{"callId":"abc","from":"+15551234567"}'


class ForkServer:
    """Records what the fork sends; can send messages back and drop the connection."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.frames: list[bytes] = []
        self.headers: dict[str, str] = {}
        self.subprotocol: str | None = None
        self.connection: Any = None
        self.connected = asyncio.Event()

    async def handler(self, ws: Any) -> None:
        self.connection = ws
        self.subprotocol = ws.subprotocol
        self.headers = dict(ws.request.headers)
        self.connected.set()
        try:
            async for message in ws:
                (self.frames if isinstance(message, bytes) else self.texts).append(message)
        except websockets.ConnectionClosed:
            pass


@pytest.fixture
async def fork_server() -> AsyncIterator[tuple[ForkServer, int]]:
    server = ForkServer()
    async with websockets.serve(
        server.handler, "127.0.0.1", 0, subprotocols=["audio.drachtio.org"]
    ) as ws:
        yield server, ws.sockets[0].getsockname()[1]


@pytest.fixture
def switch() -> tuple[Switch, list[Event]]:
    sw = Switch(hostname="callsim-test")
    events: list[Event] = []
    sw.listeners.append(events.append)
    return sw, events


def custom(events: list[Event], sub: str) -> list[Event]:
    return [e for e in events if e.subclass == f"mod_audio_fork::{sub}"]


async def until(predicate: Any, wait_s: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + wait_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def tone(seconds: float, rate: int = 16000) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()


async def test_stereo_fork_sends_metadata_then_paced_interleaved_frames(
    fork_server, switch
) -> None:
    server, port = fork_server
    sw, events = switch
    ch = sw.create_channel(
        direction="inbound",
        caller="+15551234567",
        destination="1000",
        variables={
            "send_silence_when_idle": "-1",
            "MOD_AUDIO_BASIC_AUTH_USERNAME": "fs",
            "MOD_AUDIO_BASIC_AUTH_PASSWORD": "pw",
        },
    )
    sw.answer(ch)
    reply = await sw.api(
        "uuid_audio_fork", f"{ch.uuid} start ws://127.0.0.1:{port}/fork stereo 16k {META}"
    )
    assert reply == "+OK Success\n"
    await until(lambda: server.texts)
    assert server.texts[0] == META
    assert server.subprotocol == "audio.drachtio.org"
    assert server.headers["authorization"] == "Basic " + base64.b64encode(b"fs:pw").decode()
    assert custom(events, "connect")
    sw.say(ch, tone(0.5))
    await asyncio.sleep(0.6)
    frames = list(server.frames)
    assert 20 <= len(frames) <= 40  # 20 ms each, in real time
    assert {len(f) for f in frames} == {1280}  # 16 kHz stereo
    stereo = np.frombuffer(b"".join(frames), "<i2").reshape(-1, 2)
    assert np.abs(stereo[:, 0]).max() > 5000  # the caller on the left
    assert np.abs(stereo[:, 1]).max() == 0  # nothing played on the right
    assert await sw.api("uuid_audio_fork", f"{ch.uuid} stop") == "+OK Success\n"
    await until(lambda: server.connection.close_code == 1000)
    assert not custom(events, "disconnect")  # closing it ourselves fires nothing


async def test_stereo_waits_for_written_audio_without_silence_when_idle(
    fork_server, switch
) -> None:
    server, port = fork_server
    sw, _ = switch
    ch = sw.create_channel(direction="inbound", caller="1", destination="2")
    await sw.api("uuid_audio_fork", f"{ch.uuid} start ws://127.0.0.1:{port}/f stereo 8k")
    await until(lambda: server.connected.is_set())
    await asyncio.sleep(0.2)
    assert server.frames == []  # nothing written: the core makes no stereo frame
    ch.write_audio += tone(0.2)
    await until(lambda: len(server.frames) >= 5)
    assert {len(f) for f in server.frames} == {640}  # 8 kHz stereo
    await sw.api("uuid_audio_fork", f"{ch.uuid} stop")


async def test_server_messages_are_dispatched_like_the_module(fork_server, switch) -> None:
    server, port = fork_server
    sw, events = switch
    ch = sw.create_channel(direction="inbound", caller="1", destination="2")
    await sw.api("uuid_audio_fork", f"{ch.uuid} start ws://127.0.0.1:{port}/f mono 16k")
    await until(lambda: server.connection is not None)
    pcm = tone(0.1, 8000)
    await server.connection.send(
        json.dumps(
            {
                "type": "playAudio",
                "data": {
                    "audioContentType": "raw",
                    "sampleRate": 8000,
                    "audioContent": base64.b64encode(pcm).decode(),
                    "textContent": "hello",
                },
            }
        )
    )
    await until(lambda: custom(events, "play_audio"))
    body = json.loads(custom(events, "play_audio")[0].body)
    assert body["file"].endswith(".tmp.r8")
    assert await asyncio.to_thread(Path(body["file"]).read_bytes) == pcm
    assert body["textContent"] == "hello"
    assert "audioContent" not in body
    ch.write_audio += tone(1.0)
    await server.connection.send('{"type":"killAudio"}')
    await until(lambda: custom(events, "kill_audio"))
    assert ch.write_audio == bytearray()  # the current playback stopped
    await server.connection.send('{"type":"transcription","data":{"text":"hi"}}')
    await server.connection.send('{"note":"no type"}')
    await server.connection.send("{not json")
    await server.connection.send(
        json.dumps({"type": "playAudio", "data": {"audioContent": "AAAA"}})
    )
    await until(lambda: custom(events, "json"))
    assert json.loads(custom(events, "transcription")[0].body) == {"text": "hi"}
    assert custom(events, "json")[0].body == '{"note":"no type"}'
    assert sw.faults == ["playAudio without audioContentType would crash FreeSWITCH"]
    await sw.api("uuid_audio_fork", f"{ch.uuid} stop")
    assert not await asyncio.to_thread(Path(body["file"]).exists)  # temp files go with the fork


async def test_no_reconnect_after_a_drop_until_stop(fork_server, switch) -> None:
    server, port = fork_server
    sw, events = switch
    ch = sw.create_channel(direction="inbound", caller="1", destination="2")
    start = f"{ch.uuid} start ws://127.0.0.1:{port}/f mono 16k"
    await sw.api("uuid_audio_fork", start)
    await until(lambda: server.connection is not None)
    await server.connection.close()
    await until(lambda: custom(events, "disconnect"))
    assert await sw.api("uuid_audio_fork", start) == "-ERR Operation Failed\n"  # the bug stayed
    assert await sw.api("uuid_audio_fork", f"{ch.uuid} stop") == "+OK Success\n"
    assert await sw.api("uuid_audio_fork", start) == "+OK Success\n"
    await sw.api("uuid_audio_fork", f"{ch.uuid} stop")


async def test_a_refused_connection_fires_connect_failed(switch, dead_port: int) -> None:
    sw, events = switch
    ch = sw.create_channel(direction="inbound", caller="1", destination="2")
    assert (
        await sw.api("uuid_audio_fork", f"{ch.uuid} start ws://127.0.0.1:{dead_port}/f mono 16k")
        == "+OK Success\n"
    )
    await until(lambda: custom(events, "connect_failed"))
    assert custom(events, "connect_failed")[0].body.startswith('{"reason":"')


@pytest.mark.parametrize(
    ("args", "reply"),
    [
        ("start ws://h/f stereo", ""),  # no rate: the module would crash (recorded as a fault)
        ("start ws://h/f surround 16k", ""),  # logged before any reply: ESL says -ERR no reply
        ("start", "-USAGE"),
        ("stop", "-ERR Operation Failed\n"),
    ],
)
async def test_api_replies(switch, args: str, reply: str) -> None:
    sw, _ = switch
    ch = sw.create_channel(direction="inbound", caller="1", destination="2")
    out = await sw.api("uuid_audio_fork", f"{ch.uuid} {args}")
    if reply == "":
        assert out == "-ERR no reply\n"
    else:
        assert out.startswith(reply)
    assert (
        await sw.api("uuid_audio_fork", "no-such-uuid start ws://h/f mono 16k")
        == "-ERR Operation Failed\n"
    )


async def test_metadata_with_spaces_and_no_bugname_is_split_as_freeswitch_does(
    fork_server, switch
) -> None:
    server, port = fork_server
    sw, _ = switch
    ch = sw.create_channel(direction="inbound", caller="1", destination="2")
    await sw.api(
        "uuid_audio_fork", f'{ch.uuid} start ws://127.0.0.1:{port}/f mono 16k {{"a": 1, "b": 2}}'
    )
    await until(lambda: server.texts)
    assert server.texts[0] == '1, "b": 2}'  # the bugname took '{"a":'
    assert '{"a":' in ch.forks
    await sw.api("uuid_audio_fork", f'{ch.uuid} stop {{"a":')


async def test_played_audio_appears_on_the_right_channel(fork_server, switch, tmp_path) -> None:
    server, port = fork_server
    sw, events = switch
    ch = sw.create_channel(direction="inbound", caller="1", destination="2")
    path = tmp_path / "prompt.r16"
    await asyncio.to_thread(path.write_bytes, tone(0.4))
    await sw.api("uuid_audio_fork", f"{ch.uuid} start ws://127.0.0.1:{port}/f stereo 16k")
    await until(lambda: server.connected.is_set())
    sw.execute(ch, "playback", str(path))
    await until(lambda: any(e.name == "PLAYBACK_STOP" for e in events))
    await asyncio.sleep(0.1)
    stereo = np.frombuffer(b"".join(server.frames), "<i2").reshape(-1, 2)
    assert np.abs(stereo[:, 1]).max() > 5000  # what was played, on the right
    assert np.abs(stereo[:, 0]).max() == 0  # the caller said nothing
    assert 0.3 <= len(stereo) / 16000 <= 0.6  # frames only while something was written
    await sw.api("uuid_audio_fork", f"{ch.uuid} stop")


@pytest.mark.parametrize(("codec", "min_snr_db"), [("L16", 60), ("PCMU", 25), ("PCMA", 25)])
def test_caller_audio_passes_through_the_channel_codec(codec: str, min_snr_db: float) -> None:
    sw = Switch(hostname="callsim-test")
    ch = sw.create_channel(direction="inbound", caller="1", destination="2", codec=codec)
    t = np.arange(16000) / 16000
    wide = (6000 * (np.sin(2 * np.pi * 500 * t) + np.sin(2 * np.pi * 6000 * t))).astype("<i2")
    sw.say(ch, wide.tobytes())
    heard = np.frombuffer(bytes(ch.read_audio), "<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(heard * np.hanning(len(heard))))
    freqs = np.fft.rfftfreq(len(heard), 1 / 16000)
    level = lambda f: spectrum[np.argmin(np.abs(freqs - f))]  # noqa: E731
    assert level(500) > 1000 * np.median(spectrum)  # speech band survives every codec
    if codec == "L16":
        assert heard.tolist() == wide.astype(float).tolist()
    else:  # G.711 is narrowband: nothing above 4 kHz reaches the fork
        assert level(6000) < level(500) / 1000
    low = np.sin(2 * np.pi * 500 * t[:8000]) * 6000
    if codec != "L16":
        noise = heard[2000:6000] - low[2000:6000]
        snr = 10 * np.log10(np.mean(low[2000:6000] ** 2) / np.mean(noise**2))
        assert snr > min_snr_db
    with pytest.raises(ValueError, match="not emulated"):
        sw.create_channel(direction="inbound", caller="1", destination="2", codec="G729")


def jambonz_start(ch_uuid: str, port: int) -> str:
    args = [
        ch_uuid,
        "start",
        f"ws://127.0.0.1:{port}/f",
        "stereo",
        "16000",
        "audio_fork",
        '{"a": 1}',
        "true",
        "true",
        "16000",
    ]
    return "^^|" + "|".join(args)


async def test_jambonz_build_plays_streamed_audio_and_reports_marks_at_playout(fork_server) -> None:
    server, port = fork_server
    sw = Switch(hostname="callsim-test", fork_build="jambonz")
    events: list[Event] = []
    sw.listeners.append(events.append)
    ch = sw.create_channel(
        direction="inbound", caller="1", destination="2", variables={"send_silence_when_idle": "-1"}
    )
    assert await sw.api("uuid_audio_fork", jambonz_start(ch.uuid, port)) == "+OK Success\n"
    await until(lambda: server.texts)
    assert server.texts[0] == '{"a": 1}'  # metadata with spaces survives the ^^| form
    started = asyncio.get_running_loop().time()
    audio = tone(0.3)
    for i in range(0, len(audio), 999):  # odd-sized frames: a stray byte carries over
        await server.connection.send(audio[i : i + 999])
    await server.connection.send('{"type":"mark","data":{"name":"m1"}}')
    await server.connection.send(tone(0.3))
    await server.connection.send('{"type":"mark","data":{"name":"m2"}}')
    await server.connection.send(
        json.dumps({"type": "playAudio", "data": {"audioContentType": "raw"}})
    )
    await until(lambda: len(server.texts) >= 2)
    assert server.texts[1] == '{"type": "mark", "data": {"name":"m1", "event": "playout"}}'
    assert asyncio.get_running_loop().time() - started >= 0.25  # at playout, not on arrival
    await until(lambda: len(server.texts) >= 3)
    assert server.texts[2] == '{"type": "mark", "data": {"name":"m2", "event": "playout"}}'
    assert not custom(events, "play_audio")  # ignored while streaming
    stereo = np.frombuffer(b"".join(server.frames), "<i2").reshape(-1, 2)
    assert np.abs(stereo[:, 1]).max() > 5000  # the streamed audio is what the caller heard
    await sw.api("uuid_audio_fork", f"{ch.uuid} stop")


async def test_jambonz_kill_audio_clears_the_stream_and_its_marks(fork_server) -> None:
    server, port = fork_server
    sw = Switch(hostname="callsim-test", fork_build="jambonz")
    ch = sw.create_channel(
        direction="inbound", caller="1", destination="2", variables={"send_silence_when_idle": "-1"}
    )
    await sw.api("uuid_audio_fork", jambonz_start(ch.uuid, port))
    await until(lambda: server.texts)
    await server.connection.send(tone(3.0))
    await server.connection.send('{"type":"mark","data":{"name":"late"}}')
    await asyncio.sleep(0.2)
    await server.connection.send('{"type":"killAudio"}')
    await until(lambda: len(server.texts) >= 2)
    assert server.texts[1] == '{"type": "mark", "data": {"name":"late", "event": "cleared"}}'
    before = len(server.frames)
    await asyncio.sleep(0.2)
    tail = np.frombuffer(b"".join(server.frames[before + 2 :]), "<i2").reshape(-1, 2)
    assert np.abs(tail[:, 1]).max() == 0  # nothing more is played
    assert await sw.api("uuid_audio_fork", f"{ch.uuid} stop_play") == "+OK Success\n"
    await sw.api("uuid_audio_fork", f"{ch.uuid} stop")
