"""One model, many sessions: a scheduler that feeds every session's work to the shared engine.

Finals go before partials. A session has at most one partial waiting: a newer request replaces
the older one (its result would be stale anyway). The measured inference time sets how often a
session may ask for a partial, so under load partials slow down while finals stay fast, and the
queue never holds more than the hardware can do.

When the engine can batch (``transcribe_batch``) and ``max_batch`` > 1, the work waiting for the
model when it frees up goes in one pass: finals first, then partials, of as many sessions as
share a language, hot words and decoding mode, up to ``max_batch``. On a GPU a batch costs
little more than one clip; on two CPU cores it did not pay consistently (the cores are already
busy), hence the default of 1 there.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from asr_gateway.engines import AsrEngine, BatchingEngine, Transcription

Kind = Literal["final", "partial", "file"]


@dataclass(eq=False)
class Job:
    session_id: str
    kind: Kind
    audio: npt.NDArray[np.float32]
    language: str | None
    hotwords: list[str]
    with_timestamps: bool = False
    future: asyncio.Future[Transcription] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    submitted: float = field(default_factory=time.perf_counter)
    started: float | None = None  # when the model began on it
    finished: float | None = None

    @property
    def audio_s(self) -> float:
        return len(self.audio) / 16000


class AsrMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.sessions = Gauge(
            "asr_active_sessions", "Open transcription sessions.", registry=registry
        )
        self.queue_depth = Gauge(
            "asr_queue_depth", "Jobs waiting for the model.", registry=registry
        )
        self.inference = Histogram(
            "asr_inference_seconds",
            "Model time per job.",
            ["kind"],
            registry=registry,
            buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10),
        )
        self.rtf = Histogram(
            "asr_real_time_factor",
            "Model time divided by audio duration.",
            ["kind"],
            registry=registry,
            buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5),
        )
        self.wait = Histogram(
            "asr_queue_wait_seconds",
            "Time a job waited for the model.",
            ["kind"],
            registry=registry,
            buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
        )
        self.first_partial = Histogram(
            "asr_first_partial_seconds",
            "Speech start (audio arrival) to the first partial.",
            registry=registry,
            buckets=(0.1, 0.15, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5),
        )
        self.overhead = Histogram(
            "asr_final_overhead_seconds",
            "The gateway's own time on a final: end of speech to the event, less queue wait and model time.",
            registry=registry,
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25),
        )
        self.final_delay = Histogram(
            "asr_final_delay_seconds",
            "End of speech (audio arrival) to the final transcript.",
            registry=registry,
            buckets=(0.25, 0.5, 0.6, 0.75, 1, 1.25, 1.5, 2, 3, 5),
        )
        self.dropped = Counter(
            "asr_partials_dropped_total",
            "Partial work or events dropped.",
            ["reason"],
            registry=registry,
        )
        self.hallucinations = Counter(
            "asr_hallucinations_dropped_total",
            "Finals dropped by the guard.",
            ["reason"],
            registry=registry,
        )
        self.final_words = Counter(
            "asr_final_words_total",
            "Words in the finals sent (against the words callers said: the word error base).",
            registry=registry,
        )
        self.final_confidence = Histogram(
            "asr_final_confidence",
            "The recognizer's confidence in each final sent (exp of its average log probability).",
            registry=registry,
            buckets=(0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
        )
        self.batch = Histogram(
            "asr_batch_size",
            "Jobs run together in one pass of the model.",
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32),
            registry=registry,
        )
        self.early_finals = Counter(
            "asr_early_finals_total",
            "Finals started during the end silence, by outcome: used, or withdrawn when speech resumed.",
            ["outcome"],
            registry=registry,
        )
        self.window_retries = Counter(
            "asr_window_retries_total",
            "Results from a fitted encoder window that were decoded again over the full 30 s.",
            registry=registry,
        )
        self.refused = Counter(
            "asr_sessions_refused_total", "Sessions refused at the limit.", registry=registry
        )
        self.turn_seconds = Histogram(
            "asr_turn_model_seconds",
            "Turn model time per question (features and inference).",
            registry=registry,
            buckets=(0.01, 0.02, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1),
        )
        self.turn_verdicts = Counter(
            "asr_turn_verdicts_total",
            "Turn model answers by verdict (complete, unsure, incomplete), or why none counted: "
            "stale (speech resumed or the utterance ended first), failed.",
            ["verdict"],
            registry=registry,
        )
        self.turn_skipped = Counter(
            "asr_turn_skipped_total",
            "Trailing silences the turn model was not asked about because the questions ahead "
            "would bring its verdict after the default end silence.",
            registry=registry,
        )


class InferenceScheduler:
    def __init__(
        self,
        engine: AsrEngine,
        executor: Executor,
        metrics: AsrMetrics,
        *,
        min_partial_interval_ms: int = 300,
        max_batch: int = 1,
    ) -> None:
        self.engine = engine
        self.max_batch = max_batch if isinstance(engine, BatchingEngine) else 1
        self.executor = executor
        self.metrics = metrics
        self.min_partial_interval_ms = min_partial_interval_ms
        self._finals: deque[Job] = deque()
        self._partials: dict[str, Job] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._partial_s = 0.3  # running estimate of model time per partial
        self._final_s = 0.5  # running estimate of model time per final
        self.busy = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="asr-scheduler")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for job in [*self._finals, *self._partials.values()]:
            job.future.cancel()
        self._finals.clear()
        self._partials.clear()

    # ------------------------------------------------------------------ submitting

    def submit(self, job: Job) -> asyncio.Future[Transcription]:
        if job.kind == "partial":
            old = self._partials.pop(job.session_id, None)
            if old is not None:
                old.future.cancel()
                self.metrics.dropped.labels("stale").inc()
            self._partials[job.session_id] = job
        else:
            self._finals.append(job)
        self._update_depth()
        self._wake.set()
        return job.future

    def forget(self, session_id: str) -> None:
        """The session is gone: drop its queued work."""
        job = self._partials.pop(session_id, None)
        if job is not None:
            job.future.cancel()
        for job in [j for j in self._finals if j.session_id == session_id]:
            self._finals.remove(job)
            job.future.cancel()
        self._update_depth()

    #: Share of the model's time partials may take; the rest stays free so finals do not wait.
    PARTIAL_SHARE = 0.35

    def partial_interval_ms(self, speaking_sessions: int) -> int:
        """How often each speaking session may ask for a partial, given measured model time."""
        budget_ms = self._partial_s * 1000 * max(1, speaking_sessions) / self.PARTIAL_SHARE
        return int(max(self.min_partial_interval_ms, budget_ms))

    #: Least trailing silence before an early final: shorter pauses are mostly mid-sentence.
    EARLY_FINAL_MIN_SILENCE_MS = 200

    def early_final_after_ms(self, end_silence_ms: int, floor_ms: int | None = None) -> int | None:
        """Trailing silence after which to start a final early, so its result is ready when the
        end silence completes; None when the model has a queue (speculating would delay others)
        or when the end silence is too short to gain anything. ``floor_ms`` replaces the least
        silence; with a turn model it is the silence at which the model is asked, since a
        complete turn ends near 200 ms, too soon for a final started only then."""
        if self.depth:
            return None
        after = end_silence_ms - int(1.2 * self._final_s * 1000)
        floor = self.EARLY_FINAL_MIN_SILENCE_MS if floor_ms is None else floor_ms
        after = max(floor, after)
        return after if after < end_silence_ms else None

    @property
    def depth(self) -> int:
        return len(self._finals) + len(self._partials)

    # ------------------------------------------------------------------ running

    def _next(self) -> Job | None:
        while self._finals:
            job = self._finals.popleft()
            if not job.future.cancelled():
                return job
        while self._partials:
            # Oldest request first, so every speaking session gets its turn.
            session_id = min(self._partials, key=lambda s: self._partials[s].submitted)
            job = self._partials.pop(session_id)
            if not job.future.cancelled():
                return job
        return None

    def _batch(self, first: Job) -> list[Job]:
        """``first`` and the waiting jobs that can share its pass of the model."""
        batch = [first]
        if self.max_batch < 2 or first.kind == "file" or first.language is None:
            return batch

        def fits(job: Job) -> bool:
            return (
                job.kind != "file"
                and job.language == first.language
                and job.hotwords == first.hotwords
                and job.with_timestamps == first.with_timestamps
                and not job.future.cancelled()
            )

        for job in [j for j in self._finals if fits(j)][: self.max_batch - 1]:
            self._finals.remove(job)
            batch.append(job)
        for session_id in sorted(self._partials, key=lambda s: self._partials[s].submitted):
            if len(batch) >= self.max_batch:
                break
            if fits(self._partials[session_id]):
                batch.append(self._partials.pop(session_id))
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = self._next()
            if first is None:
                self._update_depth()
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = self._batch(first)
            self._update_depth()
            started = time.perf_counter()
            for job in batch:
                job.started = started
                self.metrics.wait.labels(job.kind).observe(started - job.submitted)
            self.metrics.batch.observe(len(batch))
            self.busy = True
            try:
                results = await loop.run_in_executor(self.executor, self._work(batch))
            except Exception as exc:
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            finally:
                self.busy = False
            finished = time.perf_counter()
            seconds = finished - started
            for job, result in zip(batch, results, strict=True):
                job.finished = finished
                self.metrics.inference.labels(job.kind).observe(seconds)
                if job.audio_s > 0:
                    self.metrics.rtf.labels(job.kind).observe(seconds / job.audio_s)
                if job.kind == "partial":
                    # What one partial costs the model, a share of the batch's pass.
                    self._partial_s = 0.7 * self._partial_s + 0.3 * seconds / len(batch)
                elif job.kind == "final" and not result.retried:
                    self._final_s = 0.7 * self._final_s + 0.3 * seconds / len(batch)
                if result.retried:
                    self.metrics.window_retries.inc()
                if not job.future.done():
                    job.future.set_result(result)

    def _work(self, batch: list[Job]) -> Callable[[], list[Transcription]]:
        if len(batch) > 1:
            engine = self.engine
            assert isinstance(engine, BatchingEngine)
            language = batch[0].language
            assert language is not None
            return functools.partial(
                engine.transcribe_batch,
                [job.audio for job in batch],
                language=language,
                hotwords=batch[0].hotwords,
                with_timestamps=batch[0].with_timestamps,
                fallback=False,  # only a call's finals and partials share a pass
            )
        job = batch[0]

        def one() -> list[Transcription]:
            return [
                self.engine.transcribe(
                    job.audio,
                    language=job.language,
                    hotwords=job.hotwords,
                    with_timestamps=job.with_timestamps,
                    # A call waits on its finals: no second guesses at rising temperatures.
                    fallback=job.kind == "file",
                )
            ]

        return one

    def _update_depth(self) -> None:
        self.metrics.queue_depth.set(self.depth)
