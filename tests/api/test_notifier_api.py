"""The notifier service on an in-memory stream and sink: each finished call becomes one row."""

from __future__ import annotations

import json
import time
from typing import Any

from fakes import NOWHERE, MemoryRedis, MemorySink
from fastapi import FastAPI
from fastapi.testclient import TestClient

from notifier.app import create_app
from notifier.settings import NotifySettings


def outcome(call_id: str, name: str, status: str = "booked") -> dict[str, str]:
    body: dict[str, Any] = {
        "call_id": call_id,
        "direction": "inbound",
        "started_at": "2026-11-21T10:00:00+00:00",
        "ended_at": "2026-11-21T10:03:05+00:00",
        "duration_s": 185.0,
        "status": status,
        "slots": {"client_name": name},
    }
    return {"outcome": json.dumps(body)}


def app(memory_redis: MemoryRedis, sink: MemorySink, **overrides: Any) -> FastAPI:
    settings = NotifySettings.load(
        redis_url=NOWHERE,
        locale="en",
        columns=["call_id", "client_name", "status"],
        block_ms=50,
        **overrides,
    )
    return create_app(settings, connect_redis=memory_redis.connect, sink=sink)


def wait_for(condition: Any, seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the notifier did not get there in time"
        time.sleep(0.02)


def test_finished_calls_become_rows_in_stream_order_once_each(
    memory_redis: MemoryRedis, sink: MemorySink
) -> None:
    service = app(memory_redis, sink)
    stream = service.state.settings.stream
    with TestClient(service) as client:
        for entry in (
            outcome("call-1", "Anna Smith"),
            outcome("call-2", "Ben Jones", "callback"),
            outcome("call-1", "Anna Smith"),  # the engine published it twice
        ):
            client.portal.call(memory_redis.xadd, stream, entry)
        wait_for(lambda: len(sink.rows) == 2)
        time.sleep(0.2)  # the repeated entry had its chance to become a third row
        metrics = client.get("/metrics").text
    assert sink.header == ["Call ID", "Client name", "Status"]
    assert sink.rows == [["call-1", "Anna Smith", "booked"], ["call-2", "Ben Jones", "callback"]]
    assert "notifier_rows_appended_total 2.0" in metrics
    assert "notifier_duplicates_skipped_total 1.0" in metrics


def test_an_entry_that_is_no_outcome_goes_to_the_dead_stream_with_its_reason(
    memory_redis: MemoryRedis, sink: MemorySink
) -> None:
    service = app(memory_redis, sink)
    settings = service.state.settings
    with TestClient(service) as client:
        client.portal.call(memory_redis.xadd, settings.stream, {"status": "booked"})
        client.portal.call(memory_redis.xadd, settings.stream, outcome("call-3", "Cleo Park"))
        wait_for(lambda: len(sink.rows) == 1)
        dead = client.portal.call(memory_redis.xrange, settings.dead_stream)
    assert sink.rows == [["call-3", "Cleo Park", "booked"]]
    assert len(dead) == 1
    fields = dead[0][1]
    assert fields[b"reason"] == b"entry has no 'outcome' field (fields: status)"
    assert fields[b"status"] == b"booked"


def test_a_row_whose_write_failed_is_written_when_the_sink_returns(
    memory_redis: MemoryRedis, sink: MemorySink
) -> None:
    service = app(memory_redis, sink, claim_idle_ms=100)
    with TestClient(service) as client:
        wait_for(lambda: sink.header is not None)
        sink.available = False
        client.portal.call(memory_redis.xadd, service.state.settings.stream, outcome("c-9", "Dan"))
        wait_for(lambda: "XREADGROUP" in memory_redis.commands and not sink.rows)
        time.sleep(0.3)
        assert sink.rows == []
        sink.available = True
        wait_for(lambda: sink.rows == [["c-9", "Dan", "booked"]], seconds=5)
        dead = client.portal.call(memory_redis.xlen, service.state.settings.dead_stream)
        metrics = client.get("/metrics").text
    assert dead == 0
    assert "notifier_rows_appended_total 1.0" in metrics
    assert "notifier_write_retries_total 0.0" not in metrics, "the write was retried"
