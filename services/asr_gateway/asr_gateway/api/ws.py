"""WS /ws/transcribe: the streaming session protocol.

Protocol steps, in order: accept; refuse when at the session limit (recoverable error, close
1013); wait for ``session.start``; announce ``session.created``; then binary PCM frames and JSON
controls until ``session.close`` or a disconnect; flush the last final; ``session.closed``;
close 1000. Bad messages get an ``error`` event and the session goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from dataclasses import replace

import numpy as np
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from asr_gateway.endpointing import EndpointConfig
from asr_gateway.engines import Transcription
from asr_gateway.languages import Languages
from asr_gateway.scheduler import InferenceScheduler, Job
from asr_gateway.session import (
    Action,
    Emit,
    JudgeTurn,
    SessionConfig,
    Transcribe,
    TranscriptionSession,
    Withdraw,
)
from asr_gateway.settings import AsrSettings
from asr_gateway.turn import TurnDetector
from callkit.audio import StreamResampler
from callkit.contracts.asr import (
    CONTROLS,
    START,
    InputCommit,
    ServerEvent,
    SessionClose,
    SessionClosed,
    SessionConfigure,
    SessionCreated,
    SessionStart,
    SessionUpdated,
    TranscriptPartial,
)
from callkit.errors import AgentError, InvalidInput, PayloadTooLarge
from callkit.events import ErrorEvent, error_for

router = APIRouter()
log = logging.getLogger("asr_gateway.ws")

START_TIMEOUT_S = 10.0
SEND_TIMEOUT_S = 5.0
OUTBOX_SIZE = 256
CLOSE_TIMEOUT_S = 15.0


class ClientNotReading(Exception):
    """The client stopped reading events; the session is closed rather than buffering forever."""


class Connection:
    def __init__(self, ws: WebSocket, settings: AsrSettings, scheduler: InferenceScheduler) -> None:
        self.ws = ws
        self.settings = settings
        self.scheduler = scheduler
        self.metrics = scheduler.metrics
        self.outbox: asyncio.Queue[ServerEvent | None] = asyncio.Queue(OUTBOX_SIZE)
        self.session: TranscriptionSession | None = None
        self.resampler: StreamResampler | None = None
        self.pending: set[asyncio.Future[Transcription]] = set()
        self.first_partial_sent: set[int] = set()
        # Early finals in flight, by (utterance, silence start): the endpoint confirms or withdraws.
        self.early: dict[tuple[int, int], tuple[asyncio.Future[Transcription], Job]] = {}
        self._closing: asyncio.Task[None] | None = None
        # The shared turn model (None: off, or not loaded): asked once per trailing silence.
        self.turn: TurnDetector | None = getattr(ws.app.state, "turn", None)
        self.turn_tasks: set[asyncio.Task[None]] = set()
        self.languages: Languages = ws.app.state.languages
        self.own_hotwords: list[str] = []  # the client's (session.start, session.configure)

    # ------------------------------------------------------------------ sending

    def emit(self, event: ServerEvent) -> None:
        """Queue an event; partials are dropped (not queued) when the client is behind."""
        if isinstance(event, TranscriptPartial) and self.outbox.qsize() > OUTBOX_SIZE // 2:
            self.metrics.dropped.labels("backpressure").inc()
            return
        try:
            self.outbox.put_nowait(event)
        except asyncio.QueueFull:
            raise ClientNotReading from None

    async def sender(self) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for returns normally when it is
        # cancelled just as its send completes, and the sender would wait on the outbox forever.
        while (event := await self.outbox.get()) is not None:
            try:
                async with asyncio.timeout(SEND_TIMEOUT_S):
                    await self.ws.send_json(event.model_dump(mode="json"))
            except TimeoutError:
                raise ClientNotReading from None

    # ------------------------------------------------------------------ session

    def start(self, msg: SessionStart) -> None:
        s = self.settings
        endpoint = EndpointConfig(
            sensitivity=msg.sensitivity or s.sensitivity,
            end_silence_ms=msg.end_silence_ms or s.end_silence_ms,
            max_speech_ms=s.max_speech_ms,
            hold_after_ms=s.hold_after_ms,
            complete_silence_ms=s.turn_complete_silence_ms,
            incomplete_silence_ms=s.turn_incomplete_silence_ms,
            complete_above=s.turn_complete_above,
            incomplete_below=s.turn_incomplete_below,
        )
        # Refused (non-recoverable) when the model cannot decode the language: never another.
        language = self.languages.check(msg.language or s.language)
        self.own_hotwords = list(msg.hotwords)
        config = SessionConfig(
            language=language,
            hotwords=self.hotwords(),
            vocabulary=self.languages.vocabulary(language),
            prompt=self.languages.prompt(language),
            endpoint=endpoint,
            partials=msg.partials,
        )
        session_id = uuid.uuid4().hex[:16]
        vad = self.ws.app.state.vad.stream(s.energy_floor_dbfs)
        self.session = TranscriptionSession(session_id, config, vad)
        self.resampler = (
            StreamResampler(msg.sample_rate, 16000) if msg.sample_rate != 16000 else None
        )
        self.emit(
            SessionCreated(
                session_id=session_id,
                call_id=msg.call_id,
                sample_rate=msg.sample_rate,
                language=config.language,
                model=self.scheduler.engine.name,
                end_silence_ms=endpoint.end_silence_ms,
            )
        )

    def hotwords(self) -> list[str]:
        """The gateway's hot words and the client's, each once."""
        return list(dict.fromkeys([*self.settings.hotwords, *self.own_hotwords]))

    def audio(self, data: bytes) -> None:
        assert self.session is not None
        if len(data) > self.settings.max_frame_bytes:
            raise PayloadTooLarge(
                f"audio frame of {len(data)} bytes is over the {self.settings.max_frame_bytes}-byte limit"
            )
        if len(data) % 2:
            raise InvalidInput(
                f"audio frame of {len(data)} bytes is not whole 16-bit samples; frame dropped",
                code="odd_frame",
            )
        pcm = self.resampler.process(data) if self.resampler else data
        speaking = sum(1 for c in self.ws.app.state.connections if c.session and c.session.speaking)
        self.session.partial_interval_ms = self.scheduler.partial_interval_ms(speaking)
        endpoint = self.session.config.endpoint
        ask = None if self.turn is None else self.turn.ask_after_ms(endpoint.complete_silence_ms)
        self.session.turn_ask_ms = ask
        if self.settings.early_finals:
            # Ready when the endpoint is expected to fire: with a turn model, a complete turn's
            # short silence until the verdict says otherwise, started no sooner than the question.
            self.session.early_final_after_ms = self.scheduler.early_final_after_ms(
                self.session.endpointer.expected_silence_ms,
                floor_ms=ask,
            )
        self.run(self.session.feed(np.frombuffer(pcm, dtype="<i2"), time.perf_counter()))

    def control(self, msg: SessionConfigure | InputCommit | SessionClose) -> bool:
        """Apply a control message; True when the session should close."""
        assert self.session is not None
        if isinstance(msg, SessionClose):
            return True
        if isinstance(msg, InputCommit):
            self.run(self.session.commit())
            return False
        endpoint = None
        if msg.sensitivity or msg.end_silence_ms:
            current = self.session.config.endpoint
            endpoint = replace(
                current,
                sensitivity=msg.sensitivity or current.sensitivity,
                end_silence_ms=msg.end_silence_ms or current.end_silence_ms,
            )
        # A language the model cannot decode is refused and the session keeps its own.
        language = self.languages.check(msg.language) if msg.language else None
        if msg.hotwords is not None:
            self.own_hotwords = list(msg.hotwords)
        self.session.configure(
            language=language,
            hotwords=self.hotwords() if msg.hotwords is not None else None,
            vocabulary=self.languages.vocabulary(language) if language else None,
            prompt=self.languages.prompt(language) if language else None,
            endpoint=endpoint,
        )
        self.emit(
            SessionUpdated(
                language=self.session.config.language,
                hotwords=len(self.session.config.hotwords),
            )
        )
        return False

    def run(self, actions: list[Action]) -> None:
        assert self.session is not None
        for action in actions:
            if isinstance(action, Emit):
                self.emit(action.event)
                continue
            if isinstance(action, JudgeTurn):
                self.judge(action)
                continue
            if isinstance(action, Withdraw):
                withdrawn = self.early.pop(action.early, None)
                if withdrawn is not None:
                    future = withdrawn[0]
                    if not future.cancel() and not future.cancelled():
                        future.exception()  # finished already: a failure is of no interest now
                    self.metrics.early_finals.labels("withdrawn").inc()
                continue
            if action.early is not None and not action.speculative:
                confirmed = self.early.pop(action.early, None)
                if confirmed is not None:  # the early final heard this utterance: use it
                    future, job = confirmed
                    self.metrics.early_finals.labels("used").inc()
                    self.pending.add(future)
                    future.add_done_callback(functools.partial(self.result, action, job))
                    continue
            job = Job(
                self.session.session_id,
                action.kind,
                action.audio,
                self.session.config.language,
                self.session.config.hotwords,
                # Finals decode as offline transcription does (timestamp mode reads better);
                # partials skip timestamps, which is faster.
                with_timestamps=action.kind == "final",
            )
            future = self.scheduler.submit(job)
            if action.speculative:
                assert action.early is not None
                self.early[action.early] = (future, job)
                continue
            self.pending.add(future)
            future.add_done_callback(functools.partial(self.result, action, job))

    def judge(self, ask: JudgeTurn) -> None:
        """Ask the turn model off the event loop; its verdict goes back to the session."""
        assert self.session is not None
        turn = self.turn
        if turn is None:
            self._no_verdict(ask)
            return
        if not turn.worth_asking(ask.silence_ms, self.session.config.endpoint.end_silence_ms):
            self.metrics.turn_skipped.inc()  # the verdict would come after the default end anyway
            self._no_verdict(ask)
            return
        task = asyncio.get_running_loop().create_task(self._judge(turn, ask))
        self.turn_tasks.add(task)
        task.add_done_callback(self.turn_tasks.discard)

    async def _judge(self, turn: TurnDetector, ask: JudgeTurn) -> None:
        try:
            probability = await turn.probability(ask.audio)
        except Exception as exc:
            self.metrics.turn_verdicts.labels("failed").inc()
            log.error("turn model failed", exc_info=exc)
            self._no_verdict(ask)  # the silence ends at the default, as without a turn model
            return
        session = self.session
        if session is None:
            return
        outcome = session.on_turn(ask.key, probability)
        verdict = outcome.verdict.value if outcome.verdict else "stale"
        self.metrics.turn_verdicts.labels(verdict).inc()
        self._run_decided(outcome.actions)

    def _no_verdict(self, ask: JudgeTurn) -> None:
        """No verdict will come for this silence: the session ends it at the default."""
        if self.session is not None:
            self._run_decided(self.session.on_no_turn(ask.key).actions)

    def _run_decided(self, actions: list[Action]) -> None:
        """Run what an end of turn decided; a final it starts was decided now, not when its
        audio came."""
        now = time.perf_counter()
        decided = [replace(a, decided_at=now) if isinstance(a, Transcribe) else a for a in actions]
        try:
            self.run(decided)
        except ClientNotReading:
            self._close_not_reading()

    def _close_not_reading(self) -> None:
        """Close from outside the receive loop (results and verdicts); the loop then ends."""
        self._closing = asyncio.get_running_loop().create_task(
            self.ws.close(1008, "client is not reading events")
        )

    def result(
        self, job: Transcribe, scheduled: Job, future: asyncio.Future[Transcription]
    ) -> None:
        self.pending.discard(future)
        session = self.session
        if session is None or future.cancelled():
            if job.kind == "partial" and session is not None:
                session.on_partial(job, Transcription("", "", ()))  # frees the partial slot
            return
        exc = future.exception()
        try:
            if exc is not None:
                log.error(
                    "transcription failed", exc_info=exc, extra={"session": session.session_id}
                )
                self.emit(error_for(exc, recoverable=True))
                if job.kind == "partial":
                    session.on_partial(job, Transcription("", "", ()))
                return
            if job.kind == "partial":
                for emit in session.on_partial(job, future.result()):
                    self._observe_first_partial(job)
                    self.emit(emit.event)
                return
            outcome = session.on_final(job, future.result())
            if outcome.event is None:
                self.metrics.hallucinations.labels(outcome.dropped_reason or "unknown").inc()
                return
            final = outcome.event
            self.emit(final)
            self.metrics.final_words.inc(len(final.text.split()))
            self.metrics.final_confidence.observe(final.confidence)
            now = time.perf_counter()
            # The endpoint fired when its end silence (fixed, or the turn model's) had arrived.
            decided_ms = job.decided_ms
            if decided_ms is None:
                decided_ms = job.end_ms + session.config.endpoint.end_silence_ms
            decided = job.decided_at or session.arrival_of(decided_ms)
            if decided is not None and scheduled.finished:
                # The gateway's own time: before the job was submitted (none for an early final,
                # submitted before the endpoint fired) and after both the endpoint and the model
                # were done.
                before = max(0.0, scheduled.submitted - decided)
                after = max(0.0, now - max(decided, scheduled.finished))
                self.metrics.overhead.observe(before + after)
            end_arrived = session.arrival_of(job.end_ms)
            if end_arrived is not None:
                self.metrics.final_delay.observe(now - end_arrived)
        except ClientNotReading:
            self._close_not_reading()

    def _observe_first_partial(self, job: Transcribe) -> None:
        assert self.session is not None
        if job.utterance in self.first_partial_sent:
            return
        self.first_partial_sent.add(job.utterance)
        if len(self.first_partial_sent) > 64:
            self.first_partial_sent = {job.utterance}
        arrived = self.session.arrival_of(job.start_ms)
        if arrived is not None:
            self.metrics.first_partial.observe(time.perf_counter() - arrived)

    async def finish(self) -> None:
        """Flush: a last final for speech still in progress, then wait for outstanding finals."""
        if self.session is None:
            return
        self.run(self.session.commit())
        if self.pending:
            await asyncio.wait(set(self.pending), timeout=CLOSE_TIMEOUT_S)


@router.websocket("/ws/transcribe")
async def transcribe(ws: WebSocket) -> None:
    app = ws.app
    settings: AsrSettings = app.state.settings
    await ws.accept()
    if len(app.state.connections) >= settings.max_sessions:
        app.state.scheduler.metrics.refused.inc()
        refusal = ErrorEvent(
            code="too_many_sessions",
            recoverable=True,
            message=f"the gateway is serving its limit of {settings.max_sessions} sessions; "
            "retry shortly",
        )
        await ws.send_json(refusal.model_dump(mode="json"))
        await ws.close(1013, "too many sessions")
        return
    conn = Connection(ws, settings, app.state.scheduler)
    app.state.connections.add(conn)
    app.state.scheduler.metrics.sessions.inc()
    sender = asyncio.create_task(conn.sender())
    try:
        await _serve(conn)
        if (
            conn.session is None
        ):  # no valid session.start: say why, then close as a policy violation
            conn.outbox.put_nowait(None)
            await asyncio.wait_for(sender, SEND_TIMEOUT_S)
            await ws.close(1008, "a session starts with a valid session.start")
            return
        await conn.finish()
        conn.emit(SessionClosed(session_id=conn.session.session_id))
        conn.outbox.put_nowait(None)
        await asyncio.wait_for(sender, SEND_TIMEOUT_S)
        await ws.close(1000)
    except (WebSocketDisconnect, ClientNotReading, TimeoutError, RuntimeError):
        pass  # the client went away or stopped reading: nothing more can be told to it
    finally:
        # 1. Let the session go: its queued work, its results, its place under max_sessions.
        if conn.session is not None:
            app.state.scheduler.forget(conn.session.session_id)
        for future in [*conn.pending, *(f for f, _ in conn.early.values())]:
            future.cancel()
        for task in conn.turn_tasks:
            task.cancel()
        conn.session = None
        app.state.connections.discard(conn)
        app.state.scheduler.metrics.sessions.dec()
        # 2. Stop the sender. The wait is bounded, and this handler's own cancellation (the
        # server shutting down) is not swallowed with the sender's.
        sender.cancel()
        await asyncio.wait({sender}, timeout=SEND_TIMEOUT_S)
        if sender.done() and not sender.cancelled():
            sender.exception()  # a failed send is of no interest now; retrieved, not logged
        # 3. Close the socket if nothing else did.
        if (
            ws.application_state is WebSocketState.CONNECTED
            and ws.client_state is WebSocketState.CONNECTED
        ):
            with contextlib.suppress(Exception):
                await ws.close(1011)


async def _serve(conn: Connection) -> None:
    ws = conn.ws
    # 1. The first message must be session.start.
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            first = await ws.receive()
    except TimeoutError:
        conn.emit(
            ErrorEvent(
                code="no_session_start",
                recoverable=False,
                message=f"no session.start within {START_TIMEOUT_S:g}s",
            )
        )
        return
    if first["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(first.get("code", 1000))
    text = first.get("text")
    if text is None:
        conn.emit(
            ErrorEvent(
                code="expected_session_start",
                recoverable=False,
                message="the first message must be a JSON session.start, not audio",
            )
        )
        return
    try:
        conn.start(START.parse(text))
    except AgentError as exc:
        refused = error_for(exc, recoverable=False)
        conn.emit(refused.model_copy(update={"message": f"session.start refused: {exc.message}"}))
        return
    # 2. Audio and controls until close.
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        try:
            if message.get("bytes") is not None:
                conn.audio(message["bytes"])
            elif message.get("text") is not None and conn.control(CONTROLS.parse(message["text"])):
                return
        except AgentError as exc:
            conn.emit(error_for(exc, recoverable=True))
