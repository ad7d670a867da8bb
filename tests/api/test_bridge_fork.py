"""The bridge's audio fork endpoint: only FreeSWITCH gets in, and a call runs at the fork's rate
(an 8 kHz fork is heard at 16 kHz by the recognizer and answered at 8 kHz)."""

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
from starlette.websockets import WebSocketDisconnect

from callkit.audio import read_wav
from callkit.contracts.asr import ServerEvent
from callkit.contracts.dialog import DialogRequest, ReplyDone, ReplySentence, sse_frame
from callkit.contracts.tts import SynthesizeRequest
from fs_bridge.app import create_app as bridge_app


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("freeswitch", "wrong"),
        basic("someone", "fork-secret"),
        {"Authorization": "Basic %%%"},
    ],
    ids=["none", "wrong-password", "wrong-user", "garbled"],
)
def test_a_fork_without_the_right_credentials_is_refused(
    bridge: FastAPI, headers: dict[str, str]
) -> None:
    with TestClient(bridge) as client:
        with (
            pytest.raises(WebSocketDisconnect) as refused,
            client.websocket_connect("/fork/call-1", headers=headers) as ws,
        ):
            ws.receive_bytes()
        metrics = client.get("/metrics").text
    assert refused.value.code == 1008
    assert 'bridge_fork_refused_total{reason="auth"} 1.0' in metrics
    assert "bridge_calls_total 0.0" in metrics


# ---------------------------------------------------------------- a call at the fork's rate


class Services:
    """The policy engine and the TTS gateway as the bridge reaches them over HTTP: in-process
    apps speaking their contracts (POST /dialog with SSE, POST /synthesize with L16)."""

    def __init__(self, reply_s: float = 0.5) -> None:
        self.events: list[dict[str, Any]] = []
        self.synthesized: list[SynthesizeRequest] = []
        self.reply_s = reply_s
        policy, tts = FastAPI(), FastAPI()

        @policy.post("/dialog")
        async def dialog_turn(request: DialogRequest) -> Response:
            self.events.append(request.event.model_dump())
            frames = b""
            if request.event.type == "call.started":
                frames += sse_frame(ReplySentence(text="Hello there."))
            done = ReplyDone(session_id=request.session_id, state="greeting", slots={}, actions=[])
            return Response(frames + sse_frame(done), media_type="text/event-stream")

        @tts.post("/synthesize")
        async def synthesize(request: SynthesizeRequest) -> Response:
            self.synthesized.append(request)
            t = np.arange(int(request.sample_rate * self.reply_s)) / request.sample_rate
            pcm = (6000 * np.sin(2 * np.pi * 300 * t)).astype("<i2").tobytes()
            return Response(pcm, media_type=f"audio/L16;rate={request.sample_rate};channels=1")

        self.transports = {
            8083: httpx.ASGITransport(app=policy),
            8082: httpx.ASGITransport(app=tts),
        }

    def transport(self) -> httpx.AsyncBaseTransport:
        services = self

        class ByPort(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                return await services.transports[request.url.port or 80].handle_async_request(
                    request
                )

        return ByPort()


class RecordingRecognizer:
    """The ASR gateway's side of a call's stream: keeps every byte of audio it is given."""

    received: ClassVar[dict[str, bytearray]] = {}

    def __init__(
        self,
        url: str,
        call_id: str,
        language: str,
        audio: asyncio.Queue[bytes],
        on_event: Callable[[ServerEvent], Awaitable[None]],
    ) -> None:
        self.call_id, self.audio = call_id, audio
        self.received[call_id] = bytearray()

    async def run(self) -> None:
        while True:
            self.received[self.call_id] += await self.audio.get()


def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def stereo(left: np.ndarray, right: np.ndarray) -> bytes:
    out = np.empty(2 * left.size, dtype="<i2")
    out[0::2], out[1::2] = left, right
    return out.tobytes()


def peak_hz(pcm: bytes, rate: int) -> float:
    x = np.frombuffer(pcm, "<i2").astype(np.float64)
    return float(np.fft.rfftfreq(x.size, 1 / rate)[np.argmax(np.abs(np.fft.rfft(x)))])


def fork_app(tmp_path: Path, memory_redis: MemoryRedis, switch: FakeSwitch, **settings: Any):
    services = Services()
    app = bridge_app(
        bridge_settings(tmp_path).model_copy(update=settings),
        connect_redis=memory_redis.connect,
        event_socket=switch.connect,
        recognizer=RecordingRecognizer,
        transport=services.transport(),
    )
    return app, services


AUTH = basic("freeswitch", "fork-secret")


def test_an_8_khz_fork_is_heard_at_16_khz_and_answered_at_8_khz(
    tmp_path: Path, memory_redis: MemoryRedis, switch: FakeSwitch
) -> None:
    app, services = fork_app(tmp_path, memory_redis, switch)
    t = np.arange(8000) / 8000
    caller = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)  # a second of the caller
    audio = stereo(caller, np.zeros_like(caller))
    with TestClient(app) as client, client.websocket_connect("/fork/call-8k", headers=AUTH) as ws:
        ws.send_text('{"callId":"call-8k","direction":"inbound","sampleRate":8000}')
        greeting = b""
        while True:
            message = ws.receive()
            if message.get("bytes"):
                greeting += message["bytes"]
                continue
            mark = json.loads(message["text"])
            break
        assert mark == {"type": "mark", "data": {"name": "s1"}}
        ws.send_text('{"type": "mark", "data": {"name":"s1", "event": "playout"}}')
        # 20 ms messages, one of them cut inside a stereo sample: the channels must stay put.
        chunks = [audio[i : i + 640] for i in range(0, len(audio), 640)]
        chunks[10], chunks[11] = chunks[10] + chunks[11][:2], chunks[11][2:]
        for chunk in chunks:
            ws.send_bytes(chunk)
        heard = RecordingRecognizer.received["call-8k"]
        until(lambda: len(heard) >= 15000 * 2)
    assert [s.sample_rate for s in services.synthesized] == [8000]
    assert len(greeting) == 8000 * 2 // 2  # half a second of the agent, at 8 kHz
    assert peak_hz(greeting, 8000) == pytest.approx(300, abs=3)
    # The recognizer gets the caller at 16 kHz: the same 440 Hz, twice the samples.
    assert 15000 * 2 <= len(heard) <= 16000 * 2
    assert peak_hz(bytes(heard), 16000) == pytest.approx(440, abs=3)
    tail = np.frombuffer(bytes(heard), "<i2")[-4000:].astype(np.float64)
    assert np.sqrt(np.mean(tail * tail)) > 4000  # still the caller after the cut message
    recording = read_wav(tmp_path / "recordings" / "call-8k.wav")
    assert (recording.sample_rate, recording.channels) == (8000, 2)
    assert recording.samples()[:, 0].tolist() == caller.tolist()  # the caller, as it came
    assert services.events[0]["type"] == "call.started"


def test_in_file_mode_an_8_khz_fork_gets_8_khz_files(
    tmp_path: Path, memory_redis: MemoryRedis, switch: FakeSwitch
) -> None:
    app, _ = fork_app(tmp_path, memory_redis, switch, playback="file")
    with TestClient(app) as client, client.websocket_connect("/fork/call-f", headers=AUTH) as ws:
        ws.send_text('{"callId":"call-f","sampleRate":8000}')
        play = json.loads(ws.receive_text())
    assert play["type"] == "playAudio"
    assert play["data"]["audioContentType"] == "raw"
    assert play["data"]["sampleRate"] == 8000  # the module writes a .r8 file
    assert play["data"]["textContent"] == "s1"
    assert len(base64.b64decode(play["data"]["audioContent"])) == 8000  # 0.5 s at 8 kHz


def test_a_fork_at_a_rate_the_bridge_cannot_take_is_refused(
    tmp_path: Path, memory_redis: MemoryRedis, switch: FakeSwitch
) -> None:
    app, services = fork_app(tmp_path, memory_redis, switch)
    with TestClient(app) as client:
        with client.websocket_connect("/fork/call-24k", headers=AUTH) as ws:
            ws.send_text('{"callId":"call-24k","sampleRate":24000}')
            with pytest.raises(WebSocketDisconnect) as refused:
                ws.receive_bytes()
        metrics = client.get("/metrics").text
    assert refused.value.code == 1003
    assert 'bridge_fork_refused_total{reason="rate"} 1.0' in metrics
    assert services.events == []  # no call was started
