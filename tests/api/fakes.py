"""In-process stand-ins for what the services depend on: Redis, models, voices, sinks, FreeSWITCH.

Each behaves like the real thing for what the services use of it, in the same formats, so the
services' own code runs unchanged: MemoryRedis answers the handful of Redis commands they send
(strings with expiry, streams with consumer groups) with redis-py's reply shapes; ToneRecognizer
hears a phrase in a tone's pitch and answers like Whisper; SineVoice speaks a tone whose length
follows the text; FakeSwitch is an Event Socket that logs in, runs commands and sends events.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from fastapi import FastAPI
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from asr_gateway.engines import Segment, Transcription
from callkit.errors import DependencyUnavailable
from callkit.esl import Event
from callkit.vad import VadStream
from fs_bridge.settings import BridgeSettings
from tts_gateway.engines.base import CancelToken, Synthesis

#: The Redis URL the apps are configured with: a closed port, so a real client could not answer.
NOWHERE = "redis://127.0.0.1:1/0"
#: What ToneRecognizer hears in each pitch (Hz).
PHRASES = {440: "I would like to book an MRI", 660: "my name is Anna Smith", 880: "yes"}

# ---------------------------------------------------------------------------------------- Redis


def _b(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, int | float):
        return str(value).encode()
    return str(value).encode()


def _id(value: Any) -> tuple[int, int]:
    text = _b(value).decode()
    if text in ("-", "0"):
        return (0, 0)
    if text == "+":
        return (2**63, 0)
    ms, _, seq = text.partition("-")
    return (int(ms), int(seq or 0))


def _id_bytes(entry_id: tuple[int, int]) -> bytes:
    return f"{entry_id[0]}-{entry_id[1]}".encode()


@dataclass
class _Pending:
    consumer: bytes
    delivered_at: float
    times: int = 1


@dataclass
class _Group:
    last: tuple[int, int]
    pending: dict[tuple[int, int], _Pending] = field(default_factory=dict)
    consumers: set[bytes] = field(default_factory=set)


@dataclass
class _Stream:
    entries: dict[tuple[int, int], dict[bytes, bytes]] = field(default_factory=dict)
    groups: dict[bytes, _Group] = field(default_factory=dict)
    last: tuple[int, int] = (0, 0)


class MemoryRedis:
    """The Redis commands the services send, on one process's memory.

    ``reachable = False`` makes every command fail as a refused connection does.
    """

    def __init__(self) -> None:
        self.reachable = True
        self.closed = False
        self.commands: list[str] = []
        self._strings: dict[bytes, tuple[bytes, float | None]] = {}
        self._streams: dict[bytes, _Stream] = {}
        self._changed = asyncio.Condition()

    def connect(self, url: str) -> MemoryRedis:
        """Stands for ``callkit.redis_client.connect``: every service shares this store."""
        self.closed = False
        return self

    def _command(self, name: str) -> None:
        if not self.reachable:
            raise RedisConnectionError(
                "Error 111 connecting to 127.0.0.1:6379. Connection refused."
            )
        self.commands.append(name)

    async def aclose(self) -> None:
        self.closed = True

    async def ping(self) -> bool:
        self._command("PING")
        return True

    # ------------------------------------------------------------------ strings

    def _live(self, key: bytes) -> bytes | None:
        item = self._strings.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and time.monotonic() >= expires:
            del self._strings[key]
            return None
        return value

    async def get(self, key: Any) -> bytes | None:
        self._command("GET")
        return self._live(_b(key))

    async def set(self, key: Any, value: Any, ex: int | None = None) -> bool:
        self._command("SET")
        self._strings[_b(key)] = (_b(value), time.monotonic() + ex if ex else None)
        return True

    async def exists(self, *keys: Any) -> int:
        self._command("EXISTS")
        return sum(1 for k in keys if self._live(_b(k)) is not None or _b(k) in self._streams)

    def ttl_of(self, key: str) -> float | None:
        """Seconds left before ``key`` expires (None: no expiry or no key); for assertions."""
        item = self._strings.get(key.encode())
        return None if item is None or item[1] is None else item[1] - time.monotonic()

    # ------------------------------------------------------------------ streams

    async def xadd(
        self,
        name: Any,
        fields: Mapping[Any, Any],
        id: Any = "*",
        maxlen: int | None = None,
        approximate: bool = True,
    ) -> bytes:
        self._command("XADD")
        stream = self._streams.setdefault(_b(name), _Stream())
        now_ms = int(time.time() * 1000)
        ms = max(now_ms, stream.last[0])
        entry_id = (ms, stream.last[1] + 1 if ms == stream.last[0] else 0)
        stream.last = entry_id
        stream.entries[entry_id] = {_b(k): _b(v) for k, v in fields.items()}
        if maxlen is not None:
            for old in list(stream.entries)[: max(0, len(stream.entries) - maxlen)]:
                del stream.entries[old]
        async with self._changed:
            self._changed.notify_all()
        return _id_bytes(entry_id)

    def _stream(self, name: Any) -> _Stream:
        return self._streams.get(_b(name)) or _Stream()

    async def xlen(self, name: Any) -> int:
        self._command("XLEN")
        return len(self._stream(name).entries)

    async def xrange(
        self, name: Any, min: Any = "-", max: Any = "+", count: int | None = None
    ) -> list[tuple[bytes, dict[bytes, bytes]]]:
        self._command("XRANGE")
        low, high = _id(min), _id(max)
        found = [
            (_id_bytes(i), dict(f))
            for i, f in self._stream(name).entries.items()
            if low <= i <= high
        ]
        return found[:count] if count else found

    async def xgroup_create(
        self, name: Any, groupname: Any, id: Any = "$", mkstream: bool = False
    ) -> bool:
        self._command("XGROUP CREATE")
        if _b(name) not in self._streams:
            if not mkstream:
                raise ResponseError("The XGROUP subcommand requires the key to exist.")
            self._streams[_b(name)] = _Stream()
        stream = self._streams[_b(name)]
        if _b(groupname) in stream.groups:
            raise ResponseError("BUSYGROUP Consumer Group name already exists")
        start = stream.last if _b(id) == b"$" else _id(id)
        stream.groups[_b(groupname)] = _Group(last=start)
        return True

    def _group(self, name: Any, groupname: Any) -> _Group:
        stream = self._streams.get(_b(name))
        group = stream.groups.get(_b(groupname)) if stream else None
        if group is None:
            raise ResponseError(
                f"NOGROUP No such key '{_b(name).decode()}' or consumer group "
                f"'{_b(groupname).decode()}'"
            )
        return group

    def _deliver_new(
        self, name: Any, group: _Group, consumer: bytes, count: int | None
    ) -> list[tuple[bytes, dict[bytes, bytes]]]:
        stream = self._streams[_b(name)]
        new = [i for i in stream.entries if i > group.last][: count or None]
        for entry_id in new:
            group.pending[entry_id] = _Pending(consumer, time.monotonic())
            group.last = entry_id
        return [(_id_bytes(i), dict(stream.entries[i])) for i in new]

    async def xreadgroup(
        self,
        groupname: Any,
        consumername: Any,
        streams: Mapping[Any, Any],
        count: int | None = None,
        block: int | None = None,
        noack: bool = False,
    ) -> list[list[Any]]:
        self._command("XREADGROUP")
        ((name, start),) = streams.items()
        group = self._group(name, groupname)
        consumer = _b(consumername)
        group.consumers.add(consumer)
        if _b(start) != b">":
            mine = [
                (_id_bytes(i), dict(self._streams[_b(name)].entries.get(i, {})))
                for i, p in group.pending.items()
                if p.consumer == consumer and i > _id(start)
            ]
            return [[_b(name), mine[: count or None]]]
        found = self._deliver_new(name, group, consumer, count)
        if not found and block is not None:
            deadline = time.monotonic() + block / 1000
            async with self._changed:
                while not found and (left := deadline - time.monotonic()) > 0:
                    try:
                        await asyncio.wait_for(self._changed.wait(), left)
                    except TimeoutError:
                        break
                    found = self._deliver_new(name, group, consumer, count)
        return [[_b(name), found]] if found else []

    async def xautoclaim(
        self,
        name: Any,
        groupname: Any,
        consumername: Any,
        min_idle_time: int,
        start_id: Any = "0-0",
        count: int | None = None,
    ) -> list[Any]:
        self._command("XAUTOCLAIM")
        group = self._group(name, groupname)
        entries = self._streams[_b(name)].entries
        now = time.monotonic()
        claimed: list[tuple[bytes, dict[bytes, bytes]]] = []
        deleted: list[bytes] = []
        for entry_id, pending in sorted(group.pending.items()):
            if entry_id < _id(start_id) or (now - pending.delivered_at) * 1000 < min_idle_time:
                continue
            if count and len(claimed) >= count:
                break
            if entry_id not in entries:
                del group.pending[entry_id]
                deleted.append(_id_bytes(entry_id))
                continue
            pending.consumer, pending.delivered_at = _b(consumername), now
            pending.times += 1
            claimed.append((_id_bytes(entry_id), dict(entries[entry_id])))
        return [b"0-0", claimed, deleted]

    async def xack(self, name: Any, groupname: Any, *ids: Any) -> int:
        self._command("XACK")
        group = self._group(name, groupname)
        return sum(1 for i in ids if group.pending.pop(_id(i), None) is not None)

    async def xpending_range(
        self,
        name: Any,
        groupname: Any,
        min: Any,
        max: Any,
        count: int,
        consumername: Any = None,
        idle: int | None = None,
    ) -> list[dict[str, Any]]:
        self._command("XPENDING")
        group = self._group(name, groupname)
        now = time.monotonic()
        low, high = _id(min), _id(max)
        return [
            {
                "message_id": _id_bytes(i),
                "consumer": p.consumer,
                "time_since_delivered": int((now - p.delivered_at) * 1000),
                "times_delivered": p.times,
            }
            for i, p in sorted(group.pending.items())
            if low <= i <= high and (consumername is None or p.consumer == _b(consumername))
        ][:count]

    async def xinfo_groups(self, name: Any) -> list[dict[str, Any]]:
        self._command("XINFO GROUPS")
        stream = self._streams.get(_b(name))
        if stream is None:
            raise ResponseError("no such key")
        return [
            {
                "name": group_name,
                "consumers": len(group.consumers),
                "pending": len(group.pending),
                "last-delivered-id": _id_bytes(group.last),
                "lag": sum(1 for i in stream.entries if i > group.last),
            }
            for group_name, group in stream.groups.items()
        ]


# ------------------------------------------------------------------------------------------ ASR

RATE = 16000


def tone(hz: float, ms: int, level: float = 0.3, rate: int = RATE) -> npt.NDArray[np.int16]:
    """A sine ``ms`` long at ``level`` of full scale, as 16-bit samples."""
    t = np.arange(rate * ms // 1000) / rate
    return (np.sin(2 * np.pi * hz * t) * level * 32767).astype(np.int16)


def silence(ms: int, rate: int = RATE) -> npt.NDArray[np.int16]:
    return np.zeros(rate * ms // 1000, dtype=np.int16)


class EnergyVad:
    """A VAD model that calls a frame speech when it is loud: tones are speech, zeros are not."""

    def __init__(self, speech_rms: float = 0.02) -> None:
        self.speech_rms = speech_rms

    def stream(self, energy_floor_dbfs: float = -55.0) -> VadStream:
        return VadStream(self, energy_floor_dbfs)

    def run(
        self, frame: npt.NDArray[np.float32], state: npt.NDArray[np.float32]
    ) -> tuple[float, npt.NDArray[np.float32]]:
        new = frame[-512:]
        loud = float(np.sqrt(np.mean(new * new))) >= self.speech_rms
        return (0.97 if loud else 0.03), state


@dataclass(frozen=True)
class Heard:
    """One call of the recognizer: what it was given."""

    audio_s: float
    language: str | None
    hotwords: list[str]
    with_timestamps: bool


class ToneRecognizer:
    """Hears the phrase that belongs to the clip's pitch (``phrases``: Hz -> text); a clip with
    no tone is silence, which it reports the way Whisper does (empty text, high no-speech)."""

    name = "tone-recognizer"
    device = "cpu"

    def __init__(self, phrases: Mapping[int, str]) -> None:
        self.phrases = dict(phrases)
        self.heard: list[Heard] = []

    def pitch(self, audio: npt.NDArray[np.float32]) -> float | None:
        if audio.size == 0 or float(np.sqrt(np.mean(audio * audio))) < 0.005:
            return None
        spectrum = np.abs(np.fft.rfft(audio))
        return float(np.argmax(spectrum) * RATE / audio.size)

    def transcribe(
        self,
        audio: npt.NDArray[np.float32],
        *,
        language: str | None,
        hotwords: list[str],
        with_timestamps: bool = False,
        fallback: bool = True,
    ) -> Transcription:
        self.heard.append(Heard(audio.size / RATE, language, list(hotwords), with_timestamps))
        duration = audio.size / RATE
        hz = self.pitch(audio)
        if hz is None:
            segment = Segment(0.0, duration, "", -1.5, 0.9, 1.0)
            return Transcription("", language or "en", (segment,))
        nearest = min(self.phrases, key=lambda p: abs(p - hz))
        text = self.phrases[nearest] if abs(nearest - hz) < 25 else ""
        segment = Segment(0.0, duration, text, -0.12, 0.02, 1.1)
        return Transcription(text, language or "en", (segment,))


# ------------------------------------------------------------------------------------------ TTS


class SineVoice:
    """A voice that says any sentence as a 220 Hz tone, 50 ms per character at speed 1."""

    language = "en"
    model_version = "sine-1"

    def __init__(self, name: str, sample_rate: int = 22050) -> None:
        self.name = name
        self.sample_rate = sample_rate
        self.said: list[str] = []

    def seconds_for(self, text: str, speed: float = 1.0) -> float:
        return 0.05 * len(text) / speed

    def synthesize(self, text: str, *, speed: float, cancel: CancelToken) -> Synthesis:
        cancel.raise_if_cancelled()
        self.said.append(text)
        return Synthesis(
            tone(220, round(self.seconds_for(text, speed) * 1000), 0.5, self.sample_rate),
            self.sample_rate,
        )


# ----------------------------------------------------------------------------------------- sink


class MemorySink:
    """An append-only table in memory; ``available = False`` is a backend that refuses writes."""

    name = "memory"

    def __init__(self) -> None:
        self.header: list[str] | None = None
        self.rows: list[list[str]] = []
        self.available = True

    def _require(self) -> None:
        if not self.available:
            raise DependencyUnavailable("memory sink is unavailable")

    async def ensure_header(self, header: list[str]) -> None:
        self._require()
        if self.header is None:
            self.header = list(header)

    async def call_ids(self, column: int) -> set[str]:
        self._require()
        return {row[column] for row in self.rows if len(row) > column}

    async def append(self, rows: list[list[str]]) -> None:
        self._require()
        self.rows.extend(list(r) for r in rows)

    async def check(self) -> None:
        self._require()


# ---------------------------------------------------------------------------------- FreeSWITCH

OnConnect = Callable[[], Coroutine[Any, Any, None]]


class FakeSwitch:
    """FreeSWITCH as seen through its Event Socket: a password, channels, commands, events."""

    def __init__(self, password: str = "ClueCon") -> None:
        self.password = password
        self.channels: set[str] = set()
        self.commands: list[str] = []
        self.sockets: list[FakeEventSocket] = []

    def connect(
        self,
        host: str,
        port: int,
        password: str,
        on_event: Callable[[Event], None],
        on_connect: OnConnect,
    ) -> FakeEventSocket:
        """Stands for ``fs_bridge.esl.connect_event_socket``."""
        socket = FakeEventSocket(self, password, on_event, on_connect)
        self.sockets.append(socket)
        return socket

    def send(self, name: str, headers: Mapping[str, str], body: str = "") -> None:
        """Every logged-in socket gets the event, as with ``event plain ALL``."""
        event = Event([("Event-Name", name), *headers.items()], body)
        for socket in self.sockets:
            if socket.connected.is_set():
                socket.on_event(event)


class FakeEventSocket:
    def __init__(
        self,
        switch: FakeSwitch,
        password: str,
        on_event: Callable[[Event], None],
        on_connect: OnConnect,
    ) -> None:
        self.switch = switch
        self._password = password
        self.on_event = on_event
        self.on_connect = on_connect
        self.connected = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        if self._password != self.switch.password:
            return  # the switch refuses the login; the real client keeps retrying, never connected
        self.connected.set()
        task = asyncio.get_running_loop().create_task(self.on_connect())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self.connected.clear()
        for task in list(self._tasks):
            task.cancel()

    def _require(self, line: str) -> None:
        if not self.connected.is_set():
            raise DependencyUnavailable("FreeSWITCH event socket is not connected")
        self.switch.commands.append(line)

    async def api(self, command: str) -> str:
        self._require(f"api {command}")
        verb, _, rest = command.partition(" ")
        if verb == "uuid_exists":
            return "true" if rest.strip() in self.switch.channels else "false"
        if verb == "uuid_break":
            return "+OK"
        return f"-ERR {verb} Command not found!"

    async def bgapi(self, command: str, timeout_s: float = 60.0) -> str:
        self._require(f"bgapi {command}")
        verb, _, rest = command.partition(" ")
        call_id = rest.split(" ")[0]
        if verb in ("uuid_kill", "uuid_transfer"):
            if call_id not in self.switch.channels:
                return "-ERR No such channel!"
            if verb == "uuid_kill":
                self.switch.channels.discard(call_id)
            return "+OK"
        return f"-ERR {verb} Command not found!"

    async def sendmsg_playback(self, call_uuid: str, path: str) -> None:
        self._require(f"sendmsg {call_uuid} playback {path}")


# ------------------------------------------------------------------------------------------ LLM


def echo_llm_app(served_model: str) -> FastAPI:
    """An OpenAI-compatible server whose model answers ``You said: <last user message>``."""
    app = FastAPI()

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": served_model, "object": "model", "created": 0, "owned_by": "me"}],
        }

    @app.post("/v1/chat/completions")
    async def chat(body: dict[str, Any]) -> dict[str, Any]:
        last = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        reply = f"You said: {last}"
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", served_model),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": len(last.split()),
                "completion_tokens": len(reply.split()),
                "total_tokens": len(last.split()) + len(reply.split()),
            },
        }

    return app


def bridge_settings(tmp_path: Path, esl_password: str = "switch-secret") -> BridgeSettings:
    return BridgeSettings.load(
        redis_url=NOWHERE,
        esl_password=esl_password,
        fork_password="fork-secret",
        recordings_dir=tmp_path / "recordings",
    )
