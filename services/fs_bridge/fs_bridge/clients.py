"""Clients for the services a call uses: the ASR gateway (WebSocket), the policy engine (SSE) and
the TTS gateway (streamed PCM). Retries follow the shared rule (callkit.retry: retryable errors
only, jittered pauses, Retry-After honoured) and stop at what is safe: nothing is retried after
the first line or byte of an answer reached the call."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import websockets
from tenacity import stop_after_attempt, stop_after_delay

from callkit.contracts.asr import SERVER_EVENTS, ServerEvent, SessionStart, TranscriptFinal
from callkit.contracts.dialog import DialogRequest, Event, SseEvent, parse_sse
from callkit.contracts.tts import SynthesizeRequest
from callkit.errors import (
    AgentError,
    DependencyUnavailable,
    InvalidInput,
    error_for_status,
    parse_retry_after,
)
from callkit.retry import jittered, retrying

log = logging.getLogger("fs_bridge.clients")
#: The longest a sentence waits for the TTS gateway to answer at all: a sentence is retried
#: before its first byte only, and a caller hears silence meanwhile.
TTS_RETRY_BUDGET_S = 10.0


async def _open(
    client: httpx.AsyncClient,
    service: str,
    request: httpx.Request,
    lines: bool,
) -> tuple[httpx.Response, AsyncIterator[str] | AsyncIterator[bytes], str | bytes | None]:
    """Send ``request`` and read the answer's first line or chunk.

    A status other than 200 becomes the stack's error for it (error_for_status), with the
    Retry-After the service sent; network failures pass through for the retry rule to judge.
    The response is left open for the caller to read on.
    """
    response = await client.send(request, stream=True)
    try:
        if response.status_code != 200:
            detail = (await response.aread()).decode(errors="replace")[:300]
            raise error_for_status(
                response.status_code,
                f"{service} answered {response.status_code}: {detail}",
                retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
            )
        rest: AsyncIterator[str] | AsyncIterator[bytes]
        first: str | bytes | None
        if lines:
            rest = text = response.aiter_lines()
            first = await anext(text, None)
        else:
            rest = raw = response.aiter_bytes()
            first = await anext(raw, None)
    except BaseException:
        await response.aclose()
        raise
    return response, rest, first


class PolicyClient:
    def __init__(self, base_url: str, client: httpx.AsyncClient, *, attempts: int = 7) -> None:
        # 7 attempts with doubling pauses span about 16 s: long enough for a restart.
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.attempts = attempts

    async def events(self, session_id: str, event: Event) -> AsyncIterator[SseEvent]:
        """POST /dialog with SSE: each reply.sentence, then reply.done (or error).

        Events are idempotent (segment or event ids), so a failure before the reply's first
        line is retried by the shared rule; a refused event (4xx) is logged and dropped.
        """
        body = DialogRequest(session_id=session_id, event=event).model_dump(
            mode="json", exclude_none=True
        )
        request = self.client.build_request(
            "POST",
            f"{self.base_url}/dialog",
            json=body,
            headers={"Accept": "text/event-stream"},
            timeout=httpx.Timeout(60.0, connect=2.0),
        )

        def retrying_log(attempt: int) -> None:
            log.warning("policy engine unavailable; retrying", extra={"attempt": attempt})

        try:
            async for attempt in retrying(
                attempts=self.attempts, first_wait_s=0.25, max_wait_s=4.0, on_retry=retrying_log
            ):
                with attempt:
                    response, lines, first = await _open(
                        self.client, "policy engine", request, True
                    )
        except AgentError as exc:
            if exc.retryable:
                raise DependencyUnavailable(f"policy engine: {exc.code}") from exc
            log.warning(
                "policy engine refused an event",
                extra={"code": exc.code, "event_type": event.type, "detail": exc.message},
            )
            return
        except httpx.HTTPError as exc:
            raise DependencyUnavailable(f"policy engine: {type(exc).__name__}") from exc
        try:
            kind = ""
            async for line in _chain(first, lines):
                assert isinstance(line, str)
                if line.startswith("event: "):
                    kind = line[7:].strip()
                elif line.startswith("data: "):
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
        except httpx.HTTPError as exc:
            raise DependencyUnavailable(f"policy engine: {type(exc).__name__}") from exc
        finally:
            await response.aclose()


class TtsClient:
    def __init__(
        self,
        base_url: str,
        client: httpx.AsyncClient,
        *,
        attempts: int = 8,
        budget_s: float = TTS_RETRY_BUDGET_S,
    ) -> None:
        # 8 attempts with pauses doubling to 2 s span about 9 s, capped at ``budget_s``: a
        # restarted gateway (its voice loaded again) answers within it, and the sentence is
        # spoken late rather than lost.
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.attempts = attempts
        self.budget_s = budget_s

    async def speak(
        self, text: str, sample_rate: int = 16000, language: str | None = None
    ) -> AsyncIterator[bytes]:
        """The sentence as 16-bit PCM, streamed as it is synthesized, in the voice of
        ``language`` (the call's; None: the gateway's default).

        Retried by the shared rule before the first byte only (a caller must not hear a
        sentence twice); a refused sentence (400, 413) raises InvalidInput at once.
        """
        body = SynthesizeRequest(
            text=text, sample_rate=sample_rate, format="pcm_s16le", language=language
        )
        request = self.client.build_request(
            "POST",
            f"{self.base_url}/synthesize",
            json=body.model_dump(mode="json", exclude_none=True),
            timeout=httpx.Timeout(30.0, connect=2.0),
        )

        def retrying_log(attempt: int) -> None:
            log.warning("TTS gateway unavailable; retrying", extra={"attempt": attempt})

        retries = retrying(
            attempts=self.attempts, first_wait_s=0.2, max_wait_s=2.0, on_retry=retrying_log
        ).copy(stop=stop_after_attempt(self.attempts) | stop_after_delay(self.budget_s))
        try:
            async for attempt in retries:
                with attempt:
                    response, chunks, first = await _open(
                        self.client, "TTS gateway", request, False
                    )
        except httpx.HTTPError as exc:
            raise DependencyUnavailable(f"TTS gateway: {type(exc).__name__}") from exc
        try:
            async for chunk in _chain(first, chunks):
                assert isinstance(chunk, bytes)
                if chunk:
                    yield chunk
        except httpx.HTTPError as exc:
            raise DependencyUnavailable(f"TTS gateway: {type(exc).__name__}") from exc
        finally:
            await response.aclose()


async def _chain(
    first: str | bytes | None, rest: AsyncIterator[str] | AsyncIterator[bytes]
) -> AsyncIterator[str | bytes]:
    if first is None:
        return
    yield first
    async for item in rest:
        yield item


#: The most of the caller's audio kept for a new ASR session after a lost one: 10 s of 16 kHz
#: 16-bit PCM, as much as the call's queue holds while the gateway is away.
UNHEARD_MAX_BYTES = 10 * 16000 * 2
#: The longest pause between reconnect attempts: a restarted gateway is found within it.
RECONNECT_MAX_S = 2.0


class AsrStream:
    """The caller's audio to the ASR gateway, its events back; reconnects while the call lasts.

    A lost session loses no words: the audio sent to it since its last final (what it had not
    yet turned into words), then the audio queued while no gateway answered, go to the next
    session first, so the caller's sentence across a gateway restart is still heard.
    """

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
        #: Sent to the current session since its last final, oldest first.
        self._unheard: deque[bytes] = deque()
        self._unheard_bytes = 0

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
                    extra={
                        "error": type(exc).__name__,
                        "retry_in_s": delay,
                        "kept_ms": self._unheard_bytes // 32,
                    },
                )
            self.reconnects += 1
            # The queue keeps filling meanwhile (the call drops its oldest audio when full).
            await asyncio.sleep(jittered(delay))
            delay = min(RECONNECT_MAX_S, delay * 2)

    async def _receive(self, message: str) -> None:
        try:
            event = SERVER_EVENTS.parse(message)
        except InvalidInput as exc:
            log.warning(
                "unreadable ASR gateway event", extra={"code": exc.code, "error": exc.message}
            )
            return
        if isinstance(event, TranscriptFinal):
            # Its words are the call's now: a later session need not hear them again.
            self._unheard.clear()
            self._unheard_bytes = 0
        await self.on_event(event)

    def _keep(self, pcm: bytes) -> None:
        self._unheard.append(pcm)
        self._unheard_bytes += len(pcm)
        while self._unheard_bytes > UNHEARD_MAX_BYTES and len(self._unheard) > 1:
            self._unheard_bytes -= len(self._unheard.popleft())

    async def _send(self, ws: Any) -> None:
        # What the lost session never finalized goes first, in order, then the live audio.
        for pcm in list(self._unheard):
            await ws.send(pcm)
        while True:
            pcm = await self.audio.get()
            self._keep(pcm)
            await ws.send(pcm)
