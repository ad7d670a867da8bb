"""Every WebSocket endpoint against a hostile client: wrong first messages, odd and oversized
frames, broken, deeply nested and unknown JSON, unsupported sample rates, clients that stop
reading or vanish mid-frame. Each gets a clear error event or close code, the app stays healthy,
and a session that was running beside them keeps being served.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fakes import PHRASES, FakeSwitch, MemoryRedis, silence, tone
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from test_bridge_fork import AUTH, RecordingRecognizer, fork_app, stereo, until

from asr_gateway.api.ws import SEND_TIMEOUT_S

FRAME = 640  # 20 ms of 16 kHz L16
DEEP = "[" * 20_000  # past any parser's recursion limit, within the size limits
#: Hostile inputs tried per endpoint, for the run's summary.
TRIED: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _summary() -> Iterator[None]:
    yield
    print("\nhostile inputs tried per endpoint:")
    for endpoint, count in sorted(TRIED.items()):
        print(f"  {endpoint}  {count}")


def pcm(samples: np.ndarray) -> list[bytes]:
    data = samples.astype("<i2").tobytes()
    return [data[i : i + FRAME] for i in range(0, len(data), FRAME)]


def closed_with(ws: WebSocketTestSession) -> tuple[list[dict[str, Any]], int]:
    """The JSON events the server sent before it closed, and its close code."""
    events: list[dict[str, Any]] = []
    while True:
        message = ws.receive()
        if message["type"] == "websocket.close":
            return events, int(message.get("code", 1000))
        if message.get("text"):
            events.append(json.loads(message["text"]))


def healthy(client: TestClient) -> None:
    assert client.get("/health").status_code == 200


# ---------------------------------------------------------------- ASR: /ws/transcribe

START = json.dumps({"type": "session.start", "call_id": "call-bad"})

#: A first message that is no valid session.start, and the error code it must earn.
BAD_FIRST: list[tuple[str, Callable[[WebSocketTestSession], None], str]] = [
    ("audio first", lambda ws: ws.send_bytes(bytes(FRAME)), "expected_session_start"),
    ("empty audio first", lambda ws: ws.send_bytes(b""), "expected_session_start"),
    ("not json", lambda ws: ws.send_text("session.start"), "invalid_json"),
    ("empty text", lambda ws: ws.send_text(""), "invalid_json"),
    ("json array", lambda ws: ws.send_text("[1, 2]"), "invalid_json"),
    ("json string", lambda ws: ws.send_text('"session.start"'), "invalid_json"),
    ("deeply nested", lambda ws: ws.send_text(DEEP), "invalid_json"),
    ("deeply nested object", lambda ws: ws.send_text('{"a":' * 5_000), "invalid_json"),
    ("no type", lambda ws: ws.send_text('{"call_id": "x"}'), "missing_type"),
    ("type not a string", lambda ws: ws.send_text('{"type": ["session.start"]}'), "missing_type"),
    ("unknown type", lambda ws: ws.send_text('{"type": "session.begin"}'), "unknown_event_type"),
    ("control first", lambda ws: ws.send_text('{"type": "session.close"}'), "unknown_event_type"),
    (
        "44.1 kHz",
        lambda ws: ws.send_text('{"type": "session.start", "sample_rate": 44100}'),
        "invalid_event",
    ),
    (
        "rate as text",
        lambda ws: ws.send_text('{"type": "session.start", "sample_rate": "16000"}'),
        "invalid_event",
    ),
    (
        "negative rate",
        lambda ws: ws.send_text('{"type": "session.start", "sample_rate": -8000}'),
        "invalid_event",
    ),
    (
        "language too long",
        lambda ws: ws.send_text('{"type": "session.start", "language": "klingon-vulcan"}'),
        "invalid_event",
    ),
    (
        "oversized",
        lambda ws: ws.send_text(
            json.dumps({"type": "session.start", "hotwords": ["x" * 100] * 1000})
        ),
        "payload_too_large",
    ),
    (
        "nan",
        lambda ws: ws.send_text('{"type": "session.start", "end_silence_ms": NaN}'),
        "invalid_event",
    ),
]

#: A bad message inside a started session: an error event, and the session goes on.
BAD_IN_SESSION: list[tuple[str, Callable[[WebSocketTestSession], None], str]] = [
    ("odd frame", lambda ws: ws.send_bytes(bytes(FRAME + 1)), "odd_frame"),
    ("one byte", lambda ws: ws.send_bytes(b"\x01"), "odd_frame"),
    ("oversized frame", lambda ws: ws.send_bytes(bytes(1 << 20)), "payload_too_large"),
    ("not json", lambda ws: ws.send_text("{"), "invalid_json"),
    ("deeply nested", lambda ws: ws.send_text(DEEP), "invalid_json"),
    ("unknown type", lambda ws: ws.send_text('{"type": "audio.append"}'), "unknown_event_type"),
    ("second start", lambda ws: ws.send_text(START), "unknown_event_type"),
    (
        "bad configure",
        lambda ws: ws.send_text('{"type": "session.configure", "end_silence_ms": 0}'),
        "invalid_event",
    ),
    (
        "invalid utf-8 as audio",
        lambda ws: ws.send_bytes(b"\xff\xfe\xfd\xfc" * 160),
        "",  # whole samples: audio, however odd; no error
    ),
]


def test_the_asr_stream_refuses_every_bad_first_message_and_serves_a_call_beside(
    asr: FastAPI,
) -> None:
    with TestClient(asr) as client, client.websocket_connect("/ws/transcribe") as good:
        good.send_text(json.dumps({"type": "session.start", "call_id": "call-good"}))
        assert good.receive_json()["type"] == "session.created"
        for frame in pcm(tone(440, 700)):
            good.send_bytes(frame)
        for name, send, code in BAD_FIRST:
            TRIED["/ws/transcribe first message"] += 1
            with client.websocket_connect("/ws/transcribe") as ws:
                send(ws)
                events, close_code = closed_with(ws)
            assert [e["code"] for e in events] == [code], name
            assert events[0]["recoverable"] is False, name
            assert close_code == 1008, name
        healthy(client)
        for frame in pcm(np.concatenate([tone(440, 800), silence(800)])):
            good.send_bytes(frame)
        finals = []
        while not finals:
            event = good.receive_json()
            finals += [event] if event["type"] == "transcript.final" else []
        metrics = client.get("/metrics").text
    assert finals[0]["text"] == PHRASES[440]
    assert "asr_active_sessions 1.0" in metrics  # the good session, the bad ones let go


def test_bad_messages_inside_a_session_are_errors_and_the_session_goes_on(asr: FastAPI) -> None:
    with TestClient(asr) as client, client.websocket_connect("/ws/transcribe") as ws:
        ws.send_text(json.dumps({"type": "session.start", "call_id": "call-1", "partials": False}))
        assert ws.receive_json()["type"] == "session.created"
        frames = pcm(np.concatenate([tone(660, 1200), silence(700)]))
        for i, (name, send, code) in enumerate(BAD_IN_SESSION):
            TRIED["/ws/transcribe in session"] += 1
            ws.send_bytes(frames[i])  # the caller keeps talking between the bad messages
            send(ws)
            if code:
                error = ws.receive_json()
                while error["type"] != "error":  # speech events of the caller's audio
                    error = ws.receive_json()
                assert (error["code"], error["recoverable"]) == (code, True), name
        for frame in frames[len(BAD_IN_SESSION) :]:
            ws.send_bytes(frame)
        event = ws.receive_json()
        while event["type"] != "transcript.final":
            event = ws.receive_json()
        assert event["text"] == PHRASES[660]
        ws.send_text('{"type": "session.close"}')
        while ws.receive_json()["type"] != "session.closed":
            pass
        healthy(client)


class RawClient:
    """A WebSocket client at the ASGI level, on the app's own loop: it can stop reading (its
    send never returns) or vanish without a close frame, as a dead peer does."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.reading = True
        self.started = asyncio.Event()
        self._resume = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        return await self.incoming.get()

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        if message["type"] == "websocket.send":
            self.started.set()
        if message["type"] == "websocket.send" and not self.reading:
            await self._resume.wait()  # a peer whose receive window is full

    def scope(self, path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        return {
            "type": "websocket",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
            "scheme": "ws",
            "server": ("testserver", 80),
            "client": ("testclient", 50000),
            "root_path": "",
            "subprotocols": [],
            "state": {},
        }


async def let_go_within(seconds: float, served: Awaitable[None]) -> None:
    """Await the app serving one peer; fail when it still holds the peer after ``seconds``.

    Not wait_for: a handler that swallows the cancellation would pass it by returning late.
    """
    task = asyncio.ensure_future(served)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        raise AssertionError(f"the app still held the peer after {seconds:g} s")
    task.result()


def test_an_asr_client_that_stops_reading_or_vanishes_is_let_go(asr: FastAPI) -> None:
    with TestClient(asr) as client:

        async def stops_reading() -> list[dict[str, Any]]:
            peer = RawClient()
            await peer.incoming.put({"type": "websocket.connect"})
            await peer.incoming.put({"type": "websocket.receive", "text": START})
            served = asyncio.create_task(asr(peer.scope("/ws/transcribe"), peer.receive, peer.send))
            await peer.started.wait()
            peer.reading = False
            # Bad frames each earn an error event the peer never reads.
            for _ in range(300):
                await peer.incoming.put({"type": "websocket.receive", "bytes": b"\x01"})
            # Let go once its backlog is full, not only when a send to it times out.
            await let_go_within(SEND_TIMEOUT_S - 1, served)
            return peer.sent

        async def vanishes(after: list[dict[str, Any]]) -> list[dict[str, Any]]:
            peer = RawClient()
            await peer.incoming.put({"type": "websocket.connect"})
            for message in after:
                await peer.incoming.put(message)
            await peer.incoming.put({"type": "websocket.disconnect", "code": 1006})
            await asyncio.wait_for(asr(peer.scope("/ws/transcribe"), peer.receive, peer.send), 10)
            return peer.sent

        TRIED["/ws/transcribe peers"] += 1
        sent = client.portal.call(stops_reading)
        assert sent[-1]["type"] == "websocket.close"
        assert sent[-1]["code"] in (1008, 1011), "closed as a client that is not reading"
        half_frame = pcm(tone(440, 300))[0][: FRAME // 2 - 1]
        for messages in (
            [],
            [{"type": "websocket.receive", "text": START}],
            [{"type": "websocket.receive", "text": START}]
            + [{"type": "websocket.receive", "bytes": f} for f in pcm(tone(440, 600))]
            + [{"type": "websocket.receive", "bytes": half_frame}],
        ):
            TRIED["/ws/transcribe peers"] += 1
            client.portal.call(vanishes, messages)
        healthy(client)
        assert not asr.state.connections, "every session was let go"


class VanishingClient(RawClient):
    """Goes away the moment the first event reaches it, as a caller who hangs up does."""

    async def send(self, message: dict[str, Any]) -> None:
        await super().send(message)
        if message["type"] == "websocket.send":
            await self.incoming.put({"type": "websocket.disconnect", "code": 1001})


def test_an_asr_client_that_vanishes_as_an_event_reaches_it_is_let_go(asr: FastAPI) -> None:
    """The send that completes as the disconnect arrives must not keep the session alive: a
    session never let go holds a place under max_sessions and stops the server shutting down."""
    with TestClient(asr) as client:

        async def vanishes() -> list[dict[str, Any]]:
            peer = VanishingClient()
            await peer.incoming.put({"type": "websocket.connect"})
            await peer.incoming.put({"type": "websocket.receive", "text": START})
            await let_go_within(5, asr(peer.scope("/ws/transcribe"), peer.receive, peer.send))
            return peer.sent

        TRIED["/ws/transcribe peers"] += 1
        sent = client.portal.call(vanishes)
        assert [json.loads(m["text"])["type"] for m in sent if m.get("text")] == ["session.created"]
        assert not asr.state.connections, "the session was let go"
        assert "asr_active_sessions 0.0" in client.get("/metrics").text
        healthy(client)


# ---------------------------------------------------------------- bridge: /fork/{uuid}

GOOD_METADATA = '{"callId":"call-good","direction":"inbound","sampleRate":16000}'

#: A first fork message the bridge must refuse, and the close code it refuses with.
FORK_REFUSED: list[tuple[str, str, int]] = [
    ("44.1 kHz", '{"callId":"c","sampleRate":44100}', 1003),
    ("rate as text", '{"callId":"c","sampleRate":"8000"}', 1003),
    ("rate as list", '{"callId":"c","sampleRate":[8000]}', 1003),
    ("rate as object", '{"callId":"c","sampleRate":{"hz":8000}}', 1003),
    ("rate true", '{"callId":"c","sampleRate":true}', 1003),
    ("rate nan", '{"callId":"c","sampleRate":NaN}', 1003),
]
#: First or later fork messages the bridge takes without losing the call.
FORK_TOLERATED: list[tuple[str, str | bytes]] = [
    ("not json", "hello"),
    ("deeply nested", DEEP),
    ("deeply nested object", '{"a":' * 5_000),
    ("json array", "[1, 2, 3]"),
    ("callId not a string", '{"callId": {"x": 1}, "sampleRate": 8000}'),
    ("unknown type", '{"type": "dance", "data": {}}'),
    ("mark without data", '{"type": "mark"}'),
    ("mark with a list", '{"type": "mark", "data": ["s1"]}'),
    ("mark of no sentence", '{"type": "mark", "data": {"name": "s99", "event": "playout"}}'),
    ("odd frame", bytes(641)),
    ("one byte", b"\x01"),
    ("oversized frame", bytes(1 << 20)),
    ("invalid utf-8 as audio", b"\xff\xfe\xfd" * 213),
]


def test_the_fork_refuses_bad_rates_tolerates_junk_and_keeps_a_call_beside(
    tmp_path: Path, memory_redis: MemoryRedis, switch: FakeSwitch
) -> None:
    app, services = fork_app(tmp_path, memory_redis, switch)
    t = np.arange(16000) / 16000
    caller = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    audio = stereo(caller, np.zeros_like(caller))
    halves = audio[: len(audio) // 2], audio[len(audio) // 2 :]
    with (
        TestClient(app) as client,
        client.websocket_connect("/fork/call-good", headers=AUTH) as good,
    ):
        good.send_text(GOOD_METADATA)
        for i in range(0, len(halves[0]), 1280):
            good.send_bytes(halves[0][i : i + 1280])
        heard = RecordingRecognizer.received["call-good"]
        until(lambda: len(heard) >= len(halves[0]) // 2)
        for n, (name, metadata, code) in enumerate(FORK_REFUSED):
            TRIED["/fork/{uuid} first message"] += 1
            with client.websocket_connect(f"/fork/refused-{n}", headers=AUTH) as ws:
                ws.send_text(metadata)
                _, close_code = closed_with(ws)
            assert close_code == code, name
        for n, (name, frame) in enumerate(FORK_TOLERATED):
            TRIED["/fork/{uuid} first message"] += 1
            TRIED["/fork/{uuid} in call"] += 1
            call = f"junk-{n}"
            with client.websocket_connect(f"/fork/{call}", headers=AUTH) as ws:
                # The junk as the first message, then again inside the call.
                for message in (frame, frame):
                    if isinstance(message, bytes):
                        ws.send_bytes(message)
                    else:
                        ws.send_text(message)
                ws.send_bytes(bytes(1280))  # 20 ms of stereo: 640 bytes of the caller
                until(lambda call=call: call in app.state.bridge.calls)
                time.sleep(0.05)  # the junk read inside the call
                assert call in app.state.bridge.calls, f"{name}: the call was dropped"
        healthy(client)
        for i in range(0, len(halves[1]), 1280):
            good.send_bytes(halves[1][i : i + 1280])
        until(lambda: len(heard) >= len(audio) // 2)
        assert "call-good" in app.state.bridge.calls
    assert services.events[0]["type"] == "call.started"
