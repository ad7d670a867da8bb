"""mod_audio_fork (the upstream drachtio build) as the bridge's WebSocket server sees it.

``uuid_audio_fork <uuid> start <url> <mono|mixed|stereo> <8k|16k|rate> [bugname] [metadata]``
attaches a media bug and connects: sub-protocol ``audio.drachtio.org``, optional Basic auth
from the channel variables, no extensions. On the 101 it fires ``mod_audio_fork::connect``,
sends the metadata as one TEXT frame, then BINARY L16LE frames every 20 ms: interleaved stereo
[read = what the caller says, write = what is played to the caller], or the read side only for
mono. In stereo and mixed a frame goes out only while something is written, unless the channel
has ``send_silence_when_idle`` set (then silence is written). Text from the server is dispatched
by ``type``: ``playAudio`` writes the decoded audio to a temp file and fires ``play_audio`` with
the file's path (it plays nothing), ``killAudio`` fires ``kill_audio`` and stops the current
playback, ``transcription``/``transfer``/``disconnect``/``error`` are relayed, no ``type`` is
``json``; invalid JSON and binary frames are dropped. There is no reconnect: after the server
closes (``disconnect`` event) the bug stays, and ``start`` with the same bugname fails until
``stop``. ``stop`` and hangup close with 1000 and fire nothing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import websockets

from callkit import audiofork
from callkit.audio import SampleAligner, interleave, resample

if TYPE_CHECKING:
    from callsim.switch import Channel, Switch

log = logging.getLogger("callsim.audio_fork")
SUBPROTOCOL = audiofork.SUBPROTOCOL
DEFAULT_BUG = "audio_fork"
RAW_EXTENSIONS = {
    8000: ".r8",
    16000: ".r16",
    24000: ".r24",
    32000: ".r32",
    48000: ".r48",
    64000: ".r64",
}
_play_count = itertools.count()  # process-wide, as in the module


@dataclass
class AudioFork:
    switch: Switch
    channel: Channel
    bugname: str
    url: str
    mix: str
    rate: int
    metadata: str | None
    state: str = "CONNECTING"  # CONNECTING, CONNECTED, FAILED, DROPPED, CLOSING
    paused: bool = False
    files: list[Path] = field(default_factory=list)
    streaming: bool = False  # jambonz build: the server streams L16 to play, with marks
    stream_rate: int = 16000
    _ws: Any = None
    _task: asyncio.Task[None] | None = None
    _stream: bytearray = field(default_factory=bytearray)  # 16 kHz audio waiting to be played
    _aligner: SampleAligner = field(default_factory=SampleAligner)  # a stray odd byte waits
    _streamed: int = 0  # bytes (16 kHz) queued so far
    _played: int = 0  # bytes (16 kHz) played so far
    _marks: list[tuple[int, str]] = field(default_factory=list)  # (position, name)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        headers = {}
        user = self.switch.variable(self.channel, "MOD_AUDIO_BASIC_AUTH_USERNAME")
        if user is not None:
            password = self.switch.variable(self.channel, "MOD_AUDIO_BASIC_AUTH_PASSWORD") or ""
            headers["Authorization"] = (
                "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            )
        try:
            ws = await websockets.connect(
                self.url,
                subprotocols=[websockets.Subprotocol(SUBPROTOCOL)],
                additional_headers=headers,
                compression=None,
                open_timeout=10,
                max_size=665_600,
            )
        except Exception as exc:
            self.state = "FAILED"
            reason = f"{type(exc).__name__}: {exc}"
            # Built by string concatenation, unescaped, as the module does.
            self.switch.fire_custom(
                "mod_audio_fork::connect_failed", self.channel, '{"reason":"' + reason + '"}'
            )
            return
        if ws.subprotocol not in (None, SUBPROTOCOL):
            self.state = "FAILED"
            await ws.close()
            self.switch.fire_custom(
                "mod_audio_fork::connect_failed",
                self.channel,
                '{"reason":"HS: PROTOCOL malformed"}',
            )
            return
        self._ws = ws
        self.state = "CONNECTED"
        self.switch.fire_custom("mod_audio_fork::connect", self.channel)
        if self.metadata:
            await ws.send(self.metadata[: audiofork.MAX_METADATA_CHARS])
        reader = asyncio.create_task(self._receive())
        try:
            await self._pump()
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _pump(self) -> None:
        """One 20 ms frame per tick, in real time."""
        ws = self._ws
        frame = self.rate // 50
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while self.state == "CONNECTED":
            next_tick += 0.02
            await asyncio.sleep(max(0.0, next_tick - loop.time()))
            if self.streaming:
                await self._play_stream()
            if self.paused:
                continue
            data = self._frame(frame)
            if data is None:
                continue
            try:
                await ws.send(data)
            except websockets.ConnectionClosed:
                break

    def _frame(self, samples: int) -> bytes | None:
        read, written = self.channel.media_tick(samples, self.rate)
        if self.mix == "mono":
            return read
        if written is None:
            if self.channel.variables.get("send_silence_when_idle") is None:
                return None  # the core produces no stereo frame while nothing is written
            written = bytes(samples * 2)
        if self.mix == "mixed":
            mixed = np.frombuffer(read, "<i2").astype(np.int32) + np.frombuffer(written, "<i2")
            out: bytes = np.clip(mixed, -32768, 32767).astype("<i2").tobytes()
            return out
        return interleave(read, written)

    async def _receive(self) -> None:
        ws = self._ws
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    if self.streaming:
                        self._queue_stream(message)
                    continue  # the upstream build discards binary from the server
                await self._dispatch(message)
        except websockets.ConnectionClosed:
            pass
        if self.state == "CONNECTED":  # the server closed it: no reconnect, the bug stays
            self.state = "DROPPED"
            self.switch.fire_custom("mod_audio_fork::disconnect", self.channel)

    async def _dispatch(self, text: str) -> None:
        received = audiofork.read_command(text)
        if received is None:
            log.info("invalid JSON from the fork server dropped")
            return
        kind, data = received.kind, received.data
        if self.streaming and kind in ("mark", "clearMarks"):
            self._mark(kind, data)
        elif kind == "playAudio":
            if self.streaming:
                return  # the jambonz build ignores playAudio while streaming
            self._play_audio(data)
        elif kind == "killAudio":
            if self.streaming:
                await self.clear_stream()
            self.switch.fire_custom("mod_audio_fork::kill_audio", self.channel)
            self.channel.break_playback(flush_queue=False, why="killAudio")
        elif kind in ("transcription", "transfer", "disconnect", "error"):
            body = json.dumps(data) if data is not None else None
            self.switch.fire_custom(f"mod_audio_fork::{kind}", self.channel, body)
        elif kind == "json":
            self.switch.fire_custom("mod_audio_fork::json", self.channel, text)
        else:
            log.info("unsupported msg type dropped", extra={"msg_type": str(kind)[:40]})

    def _play_audio(self, data: Any) -> None:
        if not isinstance(data, dict):
            return  # "missing data payload": logged, no event
        content_type = data.get("audioContentType")
        if content_type is None:
            # strcmp(NULL, "raw") in the module: FreeSWITCH itself would crash here.
            self.switch.record_fault("playAudio without audioContentType would crash FreeSWITCH")
            return
        audio = data.pop("audioContent", None)
        if content_type in ("raw", "wave", "wav") and isinstance(audio, str):
            ext = (
                RAW_EXTENSIONS.get(int(data.get("sampleRate") or 16000), ".r16")
                if content_type == "raw"
                else ".wav"
            )
            path = Path(tempfile.gettempdir()) / f"{self.channel.uuid}_{next(_play_count)}.tmp{ext}"
            path.write_bytes(base64.b64decode(audio))
            self.files.append(path)
            data["file"] = str(path)
        self.switch.fire_custom(
            "mod_audio_fork::play_audio", self.channel, audiofork.play_audio_event_body(data)
        )

    # ------------------------------------------------------------------ jambonz streaming

    def _queue_stream(self, data: bytes) -> None:
        whole = self._aligner.feed(data)
        pcm = resample(whole, self.stream_rate, 16000) if self.stream_rate != 16000 else whole
        self._stream += pcm
        self._streamed += len(pcm)

    def _mark(self, kind: str, data: Any) -> None:
        """Queue a mark at the current end of the stream (at most 30), or forget them all."""
        if kind == "clearMarks":
            self._marks.clear()
        elif len(self._marks) < 30:
            self._marks.append((self._streamed, audiofork.mark_name(data)))

    async def _play_stream(self) -> None:
        """20 ms of streamed audio onto the channel's write side; report marks played out."""
        frame = bytes(self._stream[:640])
        if frame:
            del self._stream[:640]
            self._played += len(frame)
            self.channel.write_audio += frame
            del self.channel.write_audio[: max(0, len(self.channel.write_audio) - 3200)]
        while self._marks and self._marks[0][0] <= self._played:
            _, name = self._marks.pop(0)
            await self._report_mark(name, "playout")

    async def _report_mark(self, name: str, event: Literal["playout", "cleared"]) -> None:
        if self._ws is not None:
            with contextlib.suppress(websockets.ConnectionClosed):
                await self._ws.send(audiofork.mark_reply(name, event))

    async def clear_stream(self) -> None:
        """killAudio / stop_play: drop what is queued; pending marks are reported as cleared."""
        for listener in self.channel.stop_listeners:
            listener("clear_stream")
        thrown = bytes(self.channel.write_audio) + bytes(self._stream)
        for discarded in self.channel.discard_listeners:
            discarded(thrown)
        self._stream.clear()
        self._played = self._streamed
        self.channel.write_audio.clear()
        marks, self._marks = self._marks, []
        for _, name in marks:
            await self._report_mark(name, "cleared")

    async def send_text(self, text: str) -> None:
        if self.state == "CONNECTED" and self._ws is not None:
            with contextlib.suppress(websockets.ConnectionClosed):
                await self._ws.send(text)
        # Before the connection opens (or after it dropped) text is silently dropped.

    async def stop(self, final_text: str | None = None) -> None:
        was_connected = self.state == "CONNECTED"
        self.state = "CLOSING"
        if self._ws is not None and was_connected:
            with contextlib.suppress(websockets.ConnectionClosed):
                if final_text:
                    await self._ws.send(final_text)
                await self._ws.close(1000)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for path in self.files:
            path.unlink(missing_ok=True)
