"""Overload is refused, not spread: with BRIDGE_MAX_CALLS calls in progress, a new call hears the
busy phrase and is hung up, never reaching the policy engine or the ASR gateway, and the call in
progress goes on; the bridge's load is in Redis for the dialer."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

import httpx
import numpy as np
import pytest
from fakes import FakeSwitch, MemoryRedis, bridge_settings
from fastapi import FastAPI, Response
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from callkit.contracts.asr import ServerEvent
from callkit.contracts.dialog import DialogRequest, ReplyDone, ReplySentence, sse_frame
from callkit.contracts.tts import SynthesizeRequest
from callkit.errors import ConfigError
from fs_bridge.app import create_app as bridge_app
from fs_bridge.busy import load_phrases

ROOT = Path(__file__).resolve().parents[2]
AUTH = {"Authorization": "Basic " + base64.b64encode(b"freeswitch:fork-secret").decode()}
PHRASES = load_phrases(ROOT / "prompts" / "bridge.json", "en")
REPLICA = "bridge-test-1"


class Services:
    """The policy engine and the TTS gateway over HTTP, recording what each was asked."""

    def __init__(self, reply_s: float = 0.3) -> None:
        self.sessions: list[str] = []  # session id of every /dialog request
        self.said: list[str] = []
        policy, tts = FastAPI(), FastAPI()

        @policy.post("/dialog")
        async def dialog_turn(request: DialogRequest) -> Response:
            self.sessions.append(request.session_id)
            frames = b""
            if request.event.type == "call.started":
                frames += sse_frame(ReplySentence(text="Hello there."))
            done = ReplyDone(session_id=request.session_id, state="greeting", slots={}, actions=[])
            return Response(frames + sse_frame(done), media_type="text/event-stream")

        @tts.post("/synthesize")
        async def synthesize(request: SynthesizeRequest) -> Response:
            self.said.append(request.text)
            t = np.arange(int(request.sample_rate * reply_s)) / request.sample_rate
            pcm = (6000 * np.sin(2 * np.pi * 300 * t)).astype("<i2").tobytes()
            return Response(pcm, media_type=f"audio/L16;rate={request.sample_rate};channels=1")

        self.by_port = {8083: httpx.ASGITransport(app=policy), 8082: httpx.ASGITransport(app=tts)}

    def transport(self) -> httpx.AsyncBaseTransport:
        by_port = self.by_port

        class ByPort(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                return await by_port[request.url.port or 80].handle_async_request(request)

        return ByPort()


class Recognizers:
    """The ASR gateway's side: which calls opened a stream, and the audio each was given."""

    heard: ClassVar[dict[str, bytearray]] = {}

    def __init__(
        self,
        url: str,
        call_id: str,
        language: str,
        audio: asyncio.Queue[bytes],
        on_event: Callable[[ServerEvent], Awaitable[None]],
    ) -> None:
        self.call_id, self.audio = call_id, audio
        self.heard[call_id] = bytearray()

    async def run(self) -> None:
        while True:
            self.heard[self.call_id] += await self.audio.get()


@pytest.fixture
def services() -> Services:
    Recognizers.heard.clear()
    return Services()


def admission_app(
    tmp_path: Path,
    memory_redis: MemoryRedis,
    switch: FakeSwitch,
    services: Services,
    **settings: Any,
) -> FastAPI:
    return bridge_app(
        bridge_settings(tmp_path).model_copy(
            # Admission, not who answers: outbound calls open at once here.
            update={"max_calls": 1, "replica": REPLICA, "amd": False, **settings}
        ),
        connect_redis=memory_redis.connect,
        event_socket=switch.connect,
        recognizer=Recognizers,
        transport=services.transport(),
    )


def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def audio_then_mark(ws: WebSocketTestSession) -> tuple[bytes, str]:
    """The agent's audio up to its next mark, and the mark's name."""
    audio = b""
    while True:
        message = ws.receive()
        if message.get("bytes"):
            audio += message["bytes"]
            continue
        mark = json.loads(message["text"])
        assert mark["type"] == "mark"
        return audio, mark["data"]["name"]


def played(ws: WebSocketTestSession, name: str) -> None:
    ws.send_text('{"type": "mark", "data": {"name":"' + name + '", "event": "playout"}}')


def caller_audio(ms: int) -> bytes:
    t = np.arange(16 * ms) / 16000
    caller = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    out = np.zeros(2 * caller.size, dtype="<i2")
    out[0::2] = caller
    return out.tobytes()


def load(memory_redis: MemoryRedis) -> dict[str, int] | None:
    value = asyncio.run(memory_redis.get(f"bridge:{REPLICA}:load"))
    return None if value is None else json.loads(value)


def test_a_call_beyond_the_limit_hears_the_busy_phrase_and_the_call_in_progress_goes_on(
    tmp_path: Path, memory_redis: MemoryRedis, switch: FakeSwitch, services: Services
) -> None:
    switch.channels.update({"call-1", "call-2"})
    app = admission_app(tmp_path, memory_redis, switch, services)
    with TestClient(app) as client, client.websocket_connect("/fork/call-1", headers=AUTH) as one:
        one.send_text('{"callId":"call-1","direction":"inbound"}')
        greeting, mark = audio_then_mark(one)
        assert greeting
        assert mark == "s1"
        played(one, "s1")
        until(lambda: load(memory_redis) == {"active": 1, "max": 1})
        assert 0 < (memory_redis.ttl_of(f"bridge:{REPLICA}:load") or 0) <= 5

        with client.websocket_connect("/fork/call-2", headers=AUTH) as two:
            two.send_text('{"callId":"call-2","direction":"inbound","language":"ru-RU"}')
            busy, mark = audio_then_mark(two)
            assert mark == "busy"
            assert len(busy) == 16000 * 2 * 3 // 10  # the whole phrase, at the fork's rate
            two.send_bytes(caller_audio(200))  # the refused caller's voice goes nowhere
            played(two, "busy")
            with pytest.raises(WebSocketDisconnect) as closed:
                two.receive_bytes()
        assert closed.value.code == 1000
        assert "bgapi uuid_kill call-2 NORMAL_CLEARING" in switch.commands
        assert services.said[-1] == PHRASES.busy["inbound"]["ru"]

        # The first call is still heard and still counted.
        before = len(Recognizers.heard["call-1"])
        one.send_bytes(caller_audio(400))
        until(lambda: len(Recognizers.heard["call-1"]) >= before + 400 * 16 * 2)
        metrics = client.get("/metrics").text
        assert load(memory_redis) == {"active": 1, "max": 1}

    assert "bridge_calls_refused_total 1.0" in metrics
    assert "bridge_calls_active 1.0" in metrics
    assert set(services.sessions) == {"call-1"}  # the policy engine never heard of call-2
    assert set(Recognizers.heard) == {"call-1"}  # nor did the ASR gateway
    assert not (tmp_path / "recordings" / "call-2.wav").exists()
    assert "bgapi uuid_kill call-1 NORMAL_CLEARING" not in switch.commands
    # A stopped bridge takes no more calls until its key expires.
    assert (load(memory_redis) or {}).get("max") == 0


def test_in_file_mode_the_busy_phrase_is_played_as_a_file_and_a_caller_who_hangs_up_is_let_go(
    tmp_path: Path, memory_redis: MemoryRedis, switch: FakeSwitch
) -> None:
    services = Services(reply_s=3.0)  # a phrase long enough to tell a wait from a hang-up
    switch.channels.update({"call-1", "call-2"})
    app = admission_app(tmp_path, memory_redis, switch, services, playback="file")
    with TestClient(app) as client, client.websocket_connect("/fork/call-1", headers=AUTH) as one:
        one.send_text('{"callId":"call-1","direction":"outbound","sampleRate":8000}')
        assert json.loads(one.receive_text())["type"] == "playAudio"  # the greeting
        with client.websocket_connect("/fork/call-2", headers=AUTH) as two:
            two.send_text('{"callId":"call-2","direction":"outbound","sampleRate":8000}')
            play = json.loads(two.receive_text())
            assert play["type"] == "playAudio"
            assert (play["data"]["sampleRate"], play["data"]["textContent"]) == (8000, "busy")
            body = json.dumps({"file": "/tmp/busy.r8", "textContent": "busy"})
            headers = {"Event-Subclass": "mod_audio_fork::play_audio", "Unique-ID": "call-2"}
            switch.send("CUSTOM", headers, body)
            until(lambda: "sendmsg call-2 playback /tmp/busy.r8" in switch.commands)
            # The caller hangs up mid-phrase: the bridge hangs up at once, not after the phrase.
            hung_up = time.monotonic()
            two.send({"type": "websocket.disconnect", "code": 1000})
            until(lambda: "bgapi uuid_kill call-2 NORMAL_CLEARING" in switch.commands)
            assert time.monotonic() - hung_up < 1.5
        metrics = client.get("/metrics").text
    assert services.said[-1] == PHRASES.busy["outbound"]["en"]
    assert "bridge_calls_refused_total 1.0" in metrics
    assert set(services.sessions) == {"call-1"}


def test_a_call_after_the_last_one_ended_is_taken(
    tmp_path: Path, memory_redis: MemoryRedis, switch: FakeSwitch, services: Services
) -> None:
    app = admission_app(tmp_path, memory_redis, switch, services)
    with TestClient(app) as client:
        for call_id in ("call-1", "call-2"):
            with client.websocket_connect(f"/fork/{call_id}", headers=AUTH) as ws:
                ws.send_text(f'{{"callId":"{call_id}"}}')
                assert audio_then_mark(ws)[1] == "s1"  # the greeting, not the busy phrase
            until(lambda: load(memory_redis) == {"active": 0, "max": 1})
        metrics = client.get("/metrics").text
    assert "bridge_calls_refused_total 0.0" in metrics
    assert services.sessions.count("call-2") >= 1


def test_a_phrase_file_without_the_bridges_language_is_refused_at_start_up(
    tmp_path: Path,
) -> None:
    phrases = tmp_path / "bridge.json"
    phrases.write_text(json.dumps({"busy": {"inbound": {"say": {"en": "All lines are busy."}}}}))
    with pytest.raises(ConfigError, match="'ru'"):
        bridge_app(
            bridge_settings(tmp_path).model_copy(update={"phrases_file": phrases, "language": "ru"})
        )
    with pytest.raises(ConfigError, match="cannot be read"):
        bridge_app(
            bridge_settings(tmp_path).model_copy(update={"phrases_file": tmp_path / "none.json"})
        )
