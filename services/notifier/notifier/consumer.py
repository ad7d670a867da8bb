"""The `calls:completed` consumer: every finished call becomes exactly one row.

Protocol steps for each batch:
1. take entries: first those another consumer left pending too long (XAUTOCLAIM), then new ones
   (XREADGROUP);
2. parse each; one that cannot be mapped goes to `calls:dead` with the reason;
3. ask the sink which call ids it already holds (the sink is the authority: it stays right even
   if Redis lost its bookkeeping, or the process died between a write and its acknowledgement);
4. append the new rows in stream order, retrying rate limits, server errors and timeouts with
   exponential backoff;
5. acknowledge only then. An entry whose write keeps failing stays pending and is retried later;
   after ``max_deliveries`` it goes to `calls:dead` with the last error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from redis.exceptions import ResponseError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from callkit.contracts.outcome import CallOutcome, parse_entry
from callkit.contracts.streams import CALLS_COMPLETED, CALLS_DEAD
from callkit.errors import AgentError, InvalidInput, is_retryable
from callkit.retry import jittered
from notifier.columns import Layout
from notifier.sinks.base import Sink

log = logging.getLogger("notifier.consumer")
Entry = tuple[bytes, dict[bytes, bytes]]
T = TypeVar("T")


class NotifierMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.rows = Counter(
            "notifier_rows_appended_total", "Rows written to the sink.", registry=registry
        )
        self.duplicates = Counter(
            "notifier_duplicates_skipped_total",
            "Entries whose call id the sink already had.",
            registry=registry,
        )
        self.retries = Counter(
            "notifier_write_retries_total", "Sink writes retried.", registry=registry
        )
        self.dead = Counter(
            "notifier_dead_entries_total",
            "Entries moved to calls:dead.",
            ["reason"],
            registry=registry,
        )
        self.lag = Gauge(
            "notifier_lag_entries",
            "Entries in the stream not yet delivered to the group.",
            registry=registry,
        )
        self.pending = Gauge(
            "notifier_pending_entries",
            "Entries delivered but not yet acknowledged.",
            registry=registry,
        )
        self.write_seconds = Histogram(
            "notifier_write_seconds",
            "Time to append one batch.",
            registry=registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
        )


@dataclass
class ConsumerConfig:
    stream: str = CALLS_COMPLETED
    dead_stream: str = CALLS_DEAD
    group: str = "notifier"
    consumer: str = "notifier-1"
    batch: int = 50
    block_ms: int = 2000
    claim_idle_ms: int = 60_000
    max_deliveries: int = 5
    write_attempts: int = 4
    backoff_s: float = 0.5
    backoff_max_s: float = 20.0


class OutcomeConsumer:
    def __init__(
        self,
        redis: aioredis.Redis,
        sink: Sink,
        layout: Layout,
        config: ConsumerConfig,
        metrics: NotifierMetrics,
    ) -> None:
        self.redis = redis
        self.sink = sink
        self.layout = layout
        self.config = config
        self.metrics = metrics
        self._stopping = asyncio.Event()

    async def setup(self) -> None:
        try:
            await self.redis.xgroup_create(
                self.config.stream, self.config.group, id="0", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        await self.sink.ensure_header(self.layout.header)

    def stop(self) -> None:
        """Finish the current turn (a blocking read lasts at most block_ms) and return from run()."""
        self._stopping.set()

    async def run(self) -> None:
        """Consume until stopped; a failed batch (or an unreachable Redis) is retried next turn.

        Stopping goes through ``stop()`` rather than task cancellation: a cancelled blocking read
        inside the Redis client does not always surface as CancelledError.
        """
        set_up = False
        failures = 0
        while not self._stopping.is_set():
            try:
                if not set_up:
                    await self.setup()
                    set_up = True
                await self.run_once()
                failures = 0
            except AgentError as exc:
                failures += 1
                log.warning(
                    "batch not written; will retry", extra={"error": exc.message, "code": exc.code}
                )
            except Exception as exc:  # the consumer must outlive any one bad batch or Redis outage
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # being stopped: a client library turned the cancellation into an error
                failures += 1
                log.warning(
                    "consumer turn failed; will retry",
                    extra={"error": f"{type(exc).__name__}: {exc}"},
                )
            if failures:
                delay = jittered(
                    min(self.config.backoff_s * 2 ** (failures - 1), self.config.backoff_max_s)
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
            if set_up:
                with contextlib.suppress(Exception):
                    await self.refresh_gauges()

    async def run_once(self) -> int:
        entries = await self._claim()
        if not entries:
            entries = await self._read()
        if entries:
            await self.process(entries)
        return len(entries)

    async def _claim(self) -> list[Entry]:
        reply: Any = await self.redis.xautoclaim(
            self.config.stream,
            self.config.group,
            self.config.consumer,
            min_idle_time=self.config.claim_idle_ms,
            start_id="0-0",
            count=self.config.batch,
        )
        claimed = reply[1]  # [next start id, entries, deleted ids]
        return [(eid, fields) for eid, fields in claimed if fields is not None]

    async def _read(self) -> list[Entry]:
        reply: Any = await self.redis.xreadgroup(
            self.config.group,
            self.config.consumer,
            {self.config.stream: ">"},
            count=self.config.batch,
            block=self.config.block_ms,
        )
        return [entry for _, entries in reply for entry in entries] if reply else []

    async def process(self, entries: Sequence[Entry]) -> None:
        good: list[tuple[bytes, CallOutcome]] = []
        for entry_id, fields in entries:
            try:
                good.append((entry_id, parse_entry(fields)))
            except InvalidInput as exc:
                await self._bury(entry_id, fields, exc.message, "unmappable")
        if not good:
            return
        written = await self._retrying(self.sink.call_ids, self.layout.call_id_index)
        rows: list[list[str]] = []
        seen: set[str] = set()
        for _, outcome in good:
            if outcome.call_id in written or outcome.call_id in seen:
                self.metrics.duplicates.inc()
                continue
            seen.add(outcome.call_id)
            rows.append(self.layout.row(outcome))
        if rows:
            try:
                await self._append(rows)
            except AgentError as exc:
                await self._bury_exhausted([eid for eid, _ in good], exc)
                raise
            self.metrics.rows.inc(len(rows))
        await self.redis.xack(self.config.stream, self.config.group, *[eid for eid, _ in good])

    async def _append(self, rows: list[list[str]]) -> None:
        started = time.perf_counter()
        await self._retrying(self.sink.append, rows)
        self.metrics.write_seconds.observe(time.perf_counter() - started)

    async def _retrying(self, call: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run a sink call, retrying rate limits, server errors and timeouts with backoff."""
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self.config.write_attempts),
            wait=wait_exponential_jitter(
                multiplier=self.config.backoff_s, max=self.config.backoff_max_s, jitter=0.2
            ),
            retry=retry_if_exception(is_retryable),
            reraise=True,
            before_sleep=lambda _state: self.metrics.retries.inc(),
        ):
            with attempt:
                return await call(*args)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _bury_exhausted(self, ids: list[bytes], error: AgentError) -> None:
        """Entries delivered max_deliveries times without a successful write go to calls:dead."""
        pending: Any = await self.redis.xpending_range(
            self.config.stream, self.config.group, min=ids[0], max=ids[-1], count=len(ids)
        )
        for item in pending:
            if item["times_delivered"] >= self.config.max_deliveries:
                fields: Any = await self.redis.xrange(
                    self.config.stream, item["message_id"], item["message_id"]
                )
                body = fields[0][1] if fields else {}
                reason = f"write failed {item['times_delivered']} times: {error.message}"
                await self._bury(item["message_id"], body, reason, "write_failed")

    async def _bury(
        self, entry_id: bytes, fields: dict[bytes, bytes], reason: str, kind: str
    ) -> None:
        dead = {
            b"entry_id": entry_id,
            b"reason": reason.encode(),
            b"stream": self.config.stream.encode(),
            **fields,
        }
        await self.redis.xadd(self.config.dead_stream, dead)  # type: ignore[arg-type]
        await self.redis.xack(self.config.stream, self.config.group, entry_id)
        self.metrics.dead.labels(kind).inc()
        log.warning(
            "entry moved to calls:dead", extra={"entry_id": entry_id.decode(), "reason": reason}
        )

    async def refresh_gauges(self) -> None:
        try:
            groups = await self.redis.xinfo_groups(self.config.stream)
        except ResponseError:
            return
        for group in groups:
            if group["name"].decode() == self.config.group:
                self.metrics.lag.set(group.get("lag") or 0)
                self.metrics.pending.set(group.get("pending") or 0)
