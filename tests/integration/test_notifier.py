"""The notifier with real Redis streams and a real CSV file: order, dead letters, exactly once."""

from __future__ import annotations

import asyncio
import csv
import json
import signal
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

import devstack
from notifier.admin import replay_dead, status
from notifier.columns import Layout
from notifier.consumer import ConsumerConfig, NotifierMetrics, OutcomeConsumer
from notifier.settings import NotifySettings
from notifier.sinks import CsvSink

#: The worksheet "Лист4"'s columns as the original design lists them.
LIST4 = [
    "Timestamp",
    "Имя клиента",
    "Телефон",
    "Возраст",
    "Вес",
    "Симптомы",
    "Тип исследования",
    "Дата/время записи",
    "Стоимость",
    "Статус",
]


def outcome(n: int, **overrides: Any) -> dict[str, Any]:
    ended = datetime(2026, 11, 21, 10, 0, tzinfo=UTC) + timedelta(minutes=n)
    base = {
        "call_id": f"call-{n:04d}",
        "direction": "inbound",
        "caller": "+15551230000",
        "started_at": (ended - timedelta(seconds=185)).isoformat(),
        "ended_at": ended.isoformat(),
        "duration_s": 185.2,
        "status": "booked",
        "final_state": "farewell",
        "slots": {
            "client_name": f"Client {n}",
            "phone": "+1 555 123 4567",
            "age": 42,
            "weight_kg": 80,
            "symptoms": "knee pain, two weeks",
            "study_type": "MRI knee",
            "appointment_date": "2026-11-23",
            "appointment_time": "15:30",
            "price": 120,
            "currency": "USD",
        },
        "summary": "Booked an MRI of the knee.",
    }
    return base | overrides


@pytest.fixture
def names() -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {
        "stream": f"test:{tag}:completed",
        "dead_stream": f"test:{tag}:dead",
        "group": "notifier",
    }


@pytest.fixture
async def r(redis_url: str, names: dict[str, str]) -> Any:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.delete(names["stream"], names["dead_stream"])
    await client.aclose()


async def publish(r: aioredis.Redis, stream: str, *items: dict[str, Any] | bytes) -> None:
    for item in items:
        fields = {"outcome": item if isinstance(item, bytes) else json.dumps(item)}
        await r.xadd(stream, fields)


def consumer(
    r: aioredis.Redis, path: Path, names: dict[str, str], locale: str = "ru", **config: Any
) -> OutcomeConsumer:
    return OutcomeConsumer(
        r,
        CsvSink(path),
        Layout.build(locale=locale),  # type: ignore[arg-type]
        ConsumerConfig(**names, block_ms=50, backoff_s=0.05, **config),
        NotifierMetrics(CollectorRegistry()),
    )


def rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


async def drain(c: OutcomeConsumer, turns: int = 20) -> None:
    await c.setup()
    for _ in range(turns):
        if not await c.run_once():
            break


async def test_rows_arrive_in_order_under_the_original_header(r, names, tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    await publish(r, names["stream"], *(outcome(i) for i in range(1, 8)))
    await drain(consumer(r, path, names, batch=3))
    table = rows(path)
    assert table[0][:10] == LIST4
    assert [row[10] for row in table[1:]] == [f"call-{i:04d}" for i in range(1, 8)]
    first = dict(zip(table[0], table[1], strict=True))
    assert first["Имя клиента"] == "Client 1"
    assert first["Дата/время записи"] == "23.11.2026 15:30"  # a Russian sheet's dates
    assert first["Стоимость"] == "120 $"
    assert first["Длительность, с"] == "185"
    assert (await status(r, NotifySettings.load(**names)))["pending"] == 0


async def test_english_headers_are_an_option(r, names, tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    await publish(r, names["stream"], outcome(1))
    await drain(consumer(r, path, names, locale="en"))
    assert rows(path)[0][:3] == ["Timestamp", "Client name", "Phone"]


async def test_a_malformed_outcome_goes_to_dead_and_the_rest_flow(r, names, tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    await publish(
        r, names["stream"], outcome(1), b"{not json", outcome(2, status="teleported"), outcome(3)
    )
    await drain(consumer(r, path, names))
    assert [row[10] for row in rows(path)[1:]] == ["call-0001", "call-0003"]
    dead = await r.xrange(names["dead_stream"])
    reasons = [fields[b"reason"].decode() for _, fields in dead]
    assert "not valid JSON" in reasons[0]
    assert "status: Input should be" in reasons[1]
    assert dead[1][1][b"outcome"]  # the original payload is kept for replay


async def test_a_call_is_written_once_even_when_redis_forgets(r, names, tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    await publish(r, names["stream"], outcome(1), outcome(2), outcome(2))  # a retried publish, too
    await drain(consumer(r, path, names))
    # Redis loses its bookkeeping: the group is gone, everything is delivered again.
    await r.xgroup_destroy(names["stream"], names["group"])
    await publish(r, names["stream"], outcome(3))
    await drain(consumer(r, path, names))
    assert [row[10] for row in rows(path)[1:]] == ["call-0001", "call-0002", "call-0003"]


async def test_sink_down_then_back_delivers_everything_in_order(r, names, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    path = folder / "calls.csv"
    c = consumer(r, path, names, claim_idle_ms=100, write_attempts=2)
    await c.setup()
    await publish(r, names["stream"], *(outcome(i) for i in range(1, 4)))
    # The sink's directory disappears (an unmounted volume): writes fail, nothing is acknowledged.
    path.unlink()
    folder.rmdir()
    folder.write_text("not a directory")
    with pytest.raises(Exception, match="cannot append"):
        await c.run_once()
    assert (await status(r, NotifySettings.load(**names)))["pending"] == 3
    # Back again: the pending entries are claimed and written, in order, once.
    folder.unlink()
    await CsvSink(path).ensure_header(c.layout.header)
    await asyncio.sleep(0.15)
    await publish(r, names["stream"], outcome(4))
    await drain(c)
    assert [row[10] for row in rows(path)[1:]] == [
        "call-0001",
        "call-0002",
        "call-0003",
        "call-0004",
    ]


async def test_dead_entries_can_be_replayed_after_a_fix(r, names, tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    await publish(r, names["stream"], outcome(1, duration_s=-5))
    await drain(consumer(r, path, names))
    assert await r.xlen(names["dead_stream"]) == 1
    settings = NotifySettings.load(**names)
    assert await replay_dead(r, settings, 10) == 1
    assert await r.xlen(names["dead_stream"]) == 0
    await drain(consumer(r, path, names))
    assert (
        await r.xlen(names["dead_stream"]) == 1
    )  # still invalid: back in the dead stream, not lost


async def test_killed_mid_batch_and_restarted_loses_and_duplicates_nothing(
    redis_url: str, r, names, tmp_path: Path
) -> None:
    path = tmp_path / "calls.csv"
    await publish(r, names["stream"], *(outcome(i) for i in range(1, 301)))
    env = {
        "REDIS_URL": redis_url,
        "NOTIFY_CSV_PATH": str(path),
        "NOTIFY_BATCH": "7",
        "NOTIFY_STREAM": names["stream"],
        "NOTIFY_DEAD_STREAM": names["dead_stream"],
        "NOTIFY_CLAIM_IDLE_MS": "300",
        "NOTIFY_BLOCK_MS": "200",  # the SIGTERM at the end waits out one blocking read
    }

    def start(name: str) -> subprocess.Popen[str]:
        # Not waiting for /ready: the first replica is killed as soon as its first rows land.
        env_ = env | {"NOTIFY_CONSUMER": name}
        return devstack.launch("notifier", args=["--port", str(_port())], env=env_)

    first = start("replica-a")
    deadline = time.monotonic() + 30
    while not path.exists() or len(rows(path)) < 60:
        assert time.monotonic() < deadline
        assert first.poll() is None
        await asyncio.sleep(0.01)
    first.send_signal(signal.SIGKILL)  # no shutdown, no acknowledgement of the batch in flight
    first.wait()
    written_at_kill = len(rows(path)) - 1
    assert written_at_kill < 300, "replica-a finished before it was killed; the test proved nothing"
    second = start("replica-b")
    try:
        deadline = time.monotonic() + 60
        while len(rows(path)) < 301:
            assert time.monotonic() < deadline, f"only {len(rows(path)) - 1} rows arrived"
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # would a duplicate still arrive?
    finally:
        devstack.stop(second)  # SIGTERM: it finishes its batch and leaves
    ids = [row[10] for row in rows(path)[1:]]
    assert len(ids) == 300
    assert ids == [f"call-{i:04d}" for i in range(1, 301)]


def _port() -> int:
    from callkit.redis_provision import free_port

    return free_port()


async def test_the_consumer_stops_promptly_when_asked(r, names, tmp_path: Path) -> None:
    for pause in (0.0, 0.05, 0.3, 1.0):  # during setup, in the blocking read, between turns
        c = consumer(r, tmp_path / "calls.csv", names)
        task = asyncio.create_task(c.run())
        await asyncio.sleep(pause)
        c.stop()
        done, _ = await asyncio.wait({task}, timeout=c.config.block_ms / 1000 + 2)
        assert task in done, f"the consumer kept running after stop() at {pause}s"


def test_an_idle_stream_is_no_redis_failure_and_a_row_follows_at_once(
    redis_url: str, names: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A blocking read longer than a default client timeout waits quietly for the next call."""
    from fastapi.testclient import TestClient
    from redis import Redis

    from callkit.contracts.outcome import CallOutcome, entry
    from notifier.app import create_app

    settings = NotifySettings.load(
        redis_url=redis_url,
        csv_path=tmp_path / "calls.csv",
        stream=names["stream"],
        dead_stream=names["dead_stream"],
        block_ms=2500,
    )
    sync = Redis.from_url(redis_url)
    try:
        with TestClient(create_app(settings)):
            time.sleep(3.5)  # more than one whole blocking read on an idle stream
            sync.xadd(names["stream"], entry(CallOutcome.model_validate(outcome(7))))
            deadline = time.monotonic() + 5
            while len(rows(tmp_path / "calls.csv")) < 2:
                assert time.monotonic() < deadline, "the row did not follow the outcome"
                time.sleep(0.05)
    finally:
        sync.delete(names["stream"], names["dead_stream"])
        sync.close()
    assert rows(tmp_path / "calls.csv")[1][0] != ""
    assert "consumer turn failed" not in caplog.text
