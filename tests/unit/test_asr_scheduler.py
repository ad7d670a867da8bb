"""Which transcription the shared model runs next, and with which others in one pass."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from asr_gateway.engines import Segment, Transcription
from asr_gateway.scheduler import AsrMetrics, InferenceScheduler, Job, Kind


class InlineExecutor(Executor):
    """Runs the model call at once, on the loop's thread: the order of calls is the order run."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


def clip(tag: int, seconds: float = 1.0) -> np.ndarray:
    """Audio whose samples all carry ``tag``, so the engine can say which job it was given."""
    return np.full(int(16000 * seconds), tag, dtype=np.float32)


def result(tag: int) -> Transcription:
    return Transcription(f"job {tag}", "en", (Segment(0, 1, f"job {tag}", -0.1, 0.0, 1.0),))


class Engine:
    name, device = "recorder", "cpu"

    def __init__(self, fail_on: int | None = None) -> None:
        self.passes: list[list[int]] = []  # the tags of each pass of the model, in order
        self.fail_on = fail_on

    def transcribe(self, audio: np.ndarray, **_: Any) -> Transcription:
        tag = int(audio[0])
        self.passes.append([tag])
        if tag == self.fail_on:
            raise RuntimeError("CUDA out of memory")
        return result(tag)


class BatchingEngine(Engine):
    def transcribe_batch(self, audios: list[np.ndarray], **_: Any) -> list[Transcription]:
        tags = [int(a[0]) for a in audios]
        self.passes.append(tags)
        return [result(t) for t in tags]


def scheduler(engine: Engine, max_batch: int = 1) -> InferenceScheduler:
    return InferenceScheduler(
        engine, InlineExecutor(), AsrMetrics(CollectorRegistry()), max_batch=max_batch
    )


def job(
    tag: int,
    kind: Kind,
    session: str,
    submitted: float,
    language: str | None = "en",
    hotwords: tuple[str, ...] = (),
) -> Job:
    return Job(session, kind, clip(tag), language, list(hotwords), submitted=submitted)


async def run_all(s: InferenceScheduler, jobs: list[Job]) -> list[asyncio.Future[Transcription]]:
    """Queue every job while the model is busy elsewhere, then let the scheduler drain them."""
    futures = [s.submit(j) for j in jobs]
    s.start()
    waiting = [f for f in futures if not f.done()]
    if waiting:
        await asyncio.wait(waiting, timeout=2)
    await s.stop()
    return futures


async def test_finals_go_before_partials_and_each_kind_keeps_its_order() -> None:
    engine = Engine()
    # (tag, kind, session, submitted at)
    table = [
        (1, "partial", "a", 1.0),
        (2, "final", "b", 2.0),
        (3, "partial", "c", 3.0),
        (4, "final", "d", 4.0),
    ]
    futures = await run_all(scheduler(engine), [job(t, k, s, at) for t, k, s, at in table])  # type: ignore[arg-type]
    assert engine.passes == [[2], [4], [1], [3]]
    assert [f.result().text for f in futures] == ["job 1", "job 2", "job 3", "job 4"]


async def test_partials_take_turns_oldest_request_first() -> None:
    engine = Engine()
    table = [(1, "c", 3.0), (2, "a", 1.0), (3, "b", 2.0)]
    await run_all(scheduler(engine), [job(t, "partial", s, at) for t, s, at in table])
    assert engine.passes == [[2], [3], [1]]


async def test_a_newer_partial_replaces_the_waiting_one_of_its_session() -> None:
    engine = Engine()
    s = scheduler(engine)
    stale, fresh = job(1, "partial", "a", 1.0), job(2, "partial", "a", 2.0)
    futures = await run_all(s, [stale, fresh])
    assert engine.passes == [[2]]
    assert futures[0].cancelled()
    assert futures[1].result().text == "job 2"
    assert s.metrics.dropped.labels("stale")._value.get() == 1


async def test_a_withdrawn_early_final_never_reaches_the_model() -> None:
    engine = Engine()
    s = scheduler(engine)
    early, other = job(1, "final", "a", 1.0), job(2, "final", "b", 2.0)
    futures = [s.submit(early), s.submit(other)]
    futures[0].cancel()  # the caller went on speaking: the early final is withdrawn
    s.start()
    await asyncio.wait_for(futures[1], 2)
    await s.stop()
    assert engine.passes == [[2]]


async def test_a_session_that_ends_takes_its_queued_work_with_it() -> None:
    engine = Engine()
    s = scheduler(engine)
    mine = [job(1, "final", "gone", 1.0), job(2, "partial", "gone", 2.0)]
    theirs = job(3, "final", "stays", 3.0)
    futures = [s.submit(j) for j in [*mine, theirs]]
    s.forget("gone")
    assert s.depth == 1
    s.start()
    await asyncio.wait_for(futures[2], 2)
    await s.stop()
    assert engine.passes == [[3]]
    assert futures[0].cancelled()
    assert futures[1].cancelled()


async def test_a_failed_pass_fails_its_jobs_and_the_next_job_still_runs() -> None:
    engine = Engine(fail_on=1)
    futures = await run_all(
        scheduler(engine), [job(1, "final", "a", 1.0), job(2, "final", "b", 2.0)]
    )
    with pytest.raises(RuntimeError, match="out of memory"):
        futures[0].result()
    assert futures[1].result().text == "job 2"


async def test_waiting_work_that_can_share_a_pass_goes_in_one_batch_finals_first() -> None:
    engine = BatchingEngine()
    table = [
        (1, "partial", "a", 1.0, "en", ()),
        (2, "final", "b", 2.0, "en", ()),
        (3, "final", "c", 3.0, "ru", ()),  # another language: a pass of its own
        (4, "partial", "d", 4.0, "en", ("Ruma",)),  # other hot words: a pass of its own
        (5, "partial", "e", 5.0, "en", ()),
        (6, "final", "f", 6.0, "en", ()),
    ]
    await run_all(
        scheduler(engine, max_batch=8),
        [job(t, k, s, at, lang, hw) for t, k, s, at, lang, hw in table],  # type: ignore[arg-type]
    )
    assert engine.passes == [[2, 6, 1, 5], [3], [4]]


async def test_a_batch_holds_at_most_max_batch_jobs() -> None:
    engine = BatchingEngine()
    jobs = [job(t, "final", f"s{t}", float(t)) for t in range(1, 6)]
    await run_all(scheduler(engine, max_batch=2), jobs)
    assert engine.passes == [[1, 2], [3, 4], [5]]


async def test_an_engine_that_cannot_batch_runs_one_job_per_pass() -> None:
    engine = Engine()
    jobs = [job(t, "final", f"s{t}", float(t)) for t in range(1, 4)]
    await run_all(scheduler(engine, max_batch=8), jobs)
    assert engine.passes == [[1], [2], [3]]


async def test_file_transcriptions_are_never_batched() -> None:
    engine = BatchingEngine()
    jobs = [job(1, "file", "file", 1.0), job(2, "final", "b", 2.0), job(3, "final", "c", 3.0)]
    await run_all(scheduler(engine, max_batch=8), jobs)
    assert engine.passes == [[1], [2, 3]]


@pytest.mark.parametrize(
    ("measured_partial_s", "speaking", "interval_ms"),
    [
        (0.05, 1, 300),  # a fast model: the configured minimum
        (0.3, 1, 857),  # partials may take 35 % of the model's time
        (0.3, 3, 2571),  # three callers share that share
    ],
)
def test_partials_slow_down_as_the_model_gets_busier(
    measured_partial_s: float, speaking: int, interval_ms: int
) -> None:
    s = InferenceScheduler(Engine(), InlineExecutor(), AsrMetrics(CollectorRegistry()))
    s._partial_s = measured_partial_s
    assert s.partial_interval_ms(speaking) == interval_ms


async def test_early_finals_start_only_when_the_model_is_idle_and_there_is_time_to_gain() -> None:
    s = scheduler(Engine())
    s._final_s = 0.25  # a final takes 250 ms: start it 300 ms before the end silence completes
    assert s.early_final_after_ms(800) == 500
    assert s.early_final_after_ms(400) == 200  # never on pauses shorter than 200 ms
    assert s.early_final_after_ms(200) is None  # nothing to gain
    s.submit(job(1, "final", "a", 1.0))
    assert s.early_final_after_ms(800) is None  # others are waiting: no speculation
    await s.stop()


class FallbackRecorder(BatchingEngine):
    """Records whether each pass may fall back to Whisper's decoding at rising temperatures."""

    def __init__(self) -> None:
        super().__init__()
        self.fallback: list[tuple[list[int], bool]] = []

    def transcribe(self, audio: np.ndarray, **kwargs: Any) -> Transcription:
        self.fallback.append(([int(audio[0])], kwargs["fallback"]))
        return super().transcribe(audio)

    def transcribe_batch(self, audios: list[np.ndarray], **kwargs: Any) -> list[Transcription]:
        self.fallback.append(([int(a[0]) for a in audios], kwargs["fallback"]))
        return super().transcribe_batch(audios)


@pytest.mark.parametrize("max_batch", [1, 4])
async def test_only_file_transcription_may_spend_passes_on_temperature_fallback(
    max_batch: int,
) -> None:
    """Up to six passes over a mumble hold every call's finals behind it for seconds: a call's
    finals and partials get none, a file sent for transcription keeps them."""
    engine = FallbackRecorder()
    table = [(1, "final", "a", 1.0), (2, "file", "http", 2.0), (3, "partial", "b", 3.0)]
    await run_all(
        scheduler(engine, max_batch=max_batch),
        [job(t, k, s, at) for t, k, s, at in table],  # type: ignore[arg-type]
    )
    allowed = {tag: fallback for tags, fallback in engine.fallback for tag in tags}
    assert allowed == {1: False, 2: True, 3: False}
