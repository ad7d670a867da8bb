"""Clients for the services a call uses: the ASR gateway (WebSocket), the policy engine (SSE) and
the TTS gateway (streamed PCM). Each keeps its retries to what is safe: policy events are
idempotent (segment or event ids), so a failed request is retried; a synthesis is retried only
before its first byte."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import websockets

from callkit.contracts.asr import SERVER_EVENTS, ServerEvent, SessionStart
from callkit.contracts.dialog import DialogRequest, Event, SseEvent, parse_sse
from callkit.errors import DependencyUnavailable, InvalidInput

log = logging.getLogger("fs_bridge.clients")


class PolicyClient:
    def __init__(self, base_url: str, client: httpx.AsyncClient, *, attempts: int = 7) -> None:
        # 7 attempts with doubling pauses span about 16 s: long enough for a restart.
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.attempts = attempts

    async def events(self, session_id: str, event: Event) -> AsyncIterator[SseEvent]:
        """POST /dialog with SSE: each reply.sentence, then reply.done (or error)."""
        body = DialogRequest(session_id=session_id, event=event).model_dump(
            mode="json", exclude_none=True
        )
        delay = 0.25
        for attempt in range(self.attempts):
            started = False
            try:
                async with self.client.stream(
                    "POST",
                    f"{self.base_url}/dialog",
                    json=body,
                    headers={"Accept": "text/event-stream"},
                    timeout=httpx.Timeout(60.0, connect=2.0),
                ) as response:
                    if response.status_code >= 500:
                        raise DependencyUnavailable(
                            f"policy engine answered {response.status_code}"
                        )
                    if response.status_code != 200:
                        detail = (await response.aread()).decode(errors="replace")[:300]
                        log.warning(
                            "policy engine refused an event",
                            extra={
                                "status": response.status_code,
                                "event_type": event.type,
                                "detail": detail,
                            },
                        )
                        return
                    kind = ""
                    async for line in response.aiter_lines():
                        if line.startswith("event: "):
                            kind = line[7:].strip()
                        elif line.startswith("data: "):
                            started = True
                            try:
                                parsed = parse_sse(kind, line[6:])
                            except InvalidInput as exc:
                                # A reply this bridge cannot read is skipped, not fatal.
                                log.warning(
                                    "unreadable policy engine event",
                                    extra={"code": exc.code, "error": exc.message},
                                )
                                continue
                            yield parsed
                return
            except (httpx.TransportError, DependencyUnavailable) as exc:
                if started or attempt == self.attempts - 1:
                    raise DependencyUnavailable(f"policy engine: {type(exc).__name__}") from exc
                log.warning("policy engine unreachable; retrying", extra={"attempt": attempt + 1})
                await asyncio.sleep(delay)
                delay = min(4.0, delay * 2)


class TtsClient:
    def __init__(self, base_url: str, client: httpx.AsyncClient, *, attempts: int = 3) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.attempts = attempts

    async def speak(self, text: str, sample_rate: int = 16000) -> AsyncIterator[bytes]:
        """The sentence as 16-bit PCM, streamed as it is synthesized."""
        delay = 0.2
        for attempt in range(self.attempts):
            started = False
            try:
                async with self.client.stream(
                    "POST",
                    f"{self.base_url}/synthesize",
                    json={"text": text, "sample_rate": sample_rate, "format": "pcm_s16le"},
                    timeout=httpx.Timeout(30.0, connect=2.0),
                ) as response:
                    if response.status_code != 200:
                        raise DependencyUnavailable(f"TTS gateway answered {response.status_code}")
                    async for chunk in response.aiter_bytes():
                        started = True
                        yield chunk
                return
            except (httpx.TransportError, DependencyUnavailable) as exc:
                if started or attempt == self.attempts - 1:
                    raise DependencyUnavailable(f"TTS gateway: {type(exc).__name__}") from exc
                await asyncio.sleep(delay)
                delay *= 2


class AsrStream:
    """The caller's audio to the ASR gateway, its events back; reconnects while the call lasts."""

    def __init__(
        self,
        url: str,
        call_id: str,
        language: str,
        audio: asyncio.Queue[bytes],
        on_event: Callable[[ServerEvent], Awaitable[None]],
    ) -> None:
        self.url = url
        self.call_id = call_id
        self.language = language
        self.audio = audio
        self.on_event = on_event
        self.reconnects = 0

    async def run(self) -> None:
        delay = 0.2
        while True:
            try:
                async with websockets.connect(self.url, open_timeout=5, max_size=2**20) as ws:
                    start = SessionStart(
                        call_id=self.call_id, sample_rate=16000, language=self.language
                    )
                    await ws.send(start.model_dump_json())
                    delay = 0.2
                    sender = asyncio.create_task(self._send(ws))
                    try:
                        async for message in ws:
                            if isinstance(message, str):
                                await self._receive(message)
                    finally:
                        sender.cancel()
                        with_suppress = asyncio.gather(sender, return_exceptions=True)
                        await with_suppress
            except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                log.warning(
                    "ASR gateway connection lost; reconnecting",
                    extra={"error": type(exc).__name__, "retry_in_s": delay},
                )
            self.reconnects += 1
            # Audio queued while disconnected is stale: a new session starts from now.
            while not self.audio.empty():
                self.audio.get_nowait()
            await asyncio.sleep(delay)
            delay = min(5.0, delay * 2)

    async def _receive(self, message: str) -> None:
        try:
            event = SERVER_EVENTS.parse(message)
        except InvalidInput as exc:
            log.warning(
                "unreadable ASR gateway event", extra={"code": exc.code, "error": exc.message}
            )
            return
        await self.on_event(event)

    async def _send(self, ws: Any) -> None:
        while True:
            await ws.send(await self.audio.get())
