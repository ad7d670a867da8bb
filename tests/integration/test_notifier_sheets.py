"""The Sheets sink on the real gspread-asyncio path, against a local Google stand-in."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from google_fake import FakeGoogle, service_account
from prometheus_client import CollectorRegistry
from serving import serving_in_thread
from test_notifier import outcome, publish

from callkit.errors import AgentError, ConfigError, DependencyTimeout, RateLimited
from notifier.columns import Layout
from notifier.consumer import ConsumerConfig, NotifierMetrics, OutcomeConsumer
from notifier.sinks.sheets import SheetsSink

SHEET_ID = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"


@pytest.fixture
def google(free_port: int, tmp_path: Path) -> Iterator[tuple[FakeGoogle, Path, str]]:
    base = f"http://127.0.0.1:{free_port}"
    info, public_key = service_account(f"{base}/token")
    fake = FakeGoogle(SHEET_ID, "Лист4", public_key, info["client_email"])
    creds = tmp_path / "service-account.json"
    creds.write_text(json.dumps(info))
    with serving_in_thread(fake.app, free_port):
        yield fake, creds, base


def sink(creds: Path, base: str, **kw: Any) -> SheetsSink:
    return SheetsSink(creds, SHEET_ID, "Лист4", api_url=base, call_spacing_s=0.0, **kw)


@pytest.fixture
async def r(redis_url: str) -> Any:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


def consumer(r: aioredis.Redis, s: SheetsSink, stream: str, **config: Any) -> OutcomeConsumer:
    return OutcomeConsumer(
        r,
        s,
        Layout.build(),
        ConsumerConfig(
            stream=stream, dead_stream=stream + ":dead", block_ms=50, backoff_s=0.05, **config
        ),
        NotifierMetrics(CollectorRegistry()),
    )


async def drain(c: OutcomeConsumer) -> None:
    await c.setup()
    for _ in range(20):
        if not await c.run_once():
            break


async def test_rows_reach_the_sheet_once_under_a_header_written_once(google, r) -> None:
    fake, creds, base = google
    stream = f"test:{uuid.uuid4().hex[:8]}:completed"
    try:
        await publish(r, stream, *(outcome(i) for i in range(1, 5)))
        await drain(consumer(r, sink(creds, base), stream, batch=3))
        await publish(r, stream, outcome(2), outcome(5))  # a retried publish of call 2
        await drain(consumer(r, sink(creds, base), stream))  # a restarted notifier: header kept
    finally:
        await r.delete(stream, stream + ":dead")
    rows = fake.sheet.rows
    assert rows[0][:2] == ["Timestamp", "Имя клиента"]
    assert [row[10] for row in rows[1:]] == [f"call-{i:04d}" for i in range(1, 6)]
    assert sum(1 for row in rows if row[0] == "Timestamp") == 1
    appends = [c for c in fake.calls if c.endswith(":append")]
    assert len(appends) == 1 + 2 + 1  # header, two batches of the first run, one of the second


async def test_rate_limits_and_server_errors_are_retried(google, r) -> None:
    fake, creds, base = google
    stream = f"test:{uuid.uuid4().hex[:8]}:completed"
    c = consumer(r, sink(creds, base), stream, write_attempts=4)
    try:
        await c.setup()
        await publish(r, stream, outcome(1), outcome(2))
        fake.fail_next(429, count=1)
        await c.run_once()
        fake.fail_next(500, count=1)
        await publish(r, stream, outcome(3))
        await c.run_once()
    finally:
        await r.delete(stream, stream + ":dead")
    assert [row[10] for row in fake.sheet.rows[1:]] == ["call-0001", "call-0002", "call-0003"]
    assert c.metrics.retries._value.get() == 2


async def test_errors_are_classified_for_the_retry_policy(google) -> None:
    fake, creds, base = google
    s = sink(creds, base, timeout_s=0.5)
    await s.ensure_header(Layout.build().header)
    fake.fail_next(429, count=1)
    with pytest.raises(RateLimited):
        await s.append([["x"]])
    fake.slow(2.0)
    with pytest.raises(DependencyTimeout):
        await s.append([["x"]])
    fake.slow(0)
    wrong = SheetsSink(creds, "not-the-sheet", "Лист4", api_url=base, call_spacing_s=0.0)
    with pytest.raises(ConfigError, match="shared with the service account"):
        await wrong.check()


async def test_a_forged_key_gets_no_token(google, tmp_path: Path) -> None:
    _, creds, base = google
    forged, _ = service_account(json.loads(creds.read_text())["token_uri"])
    path = tmp_path / "forged.json"
    path.write_text(json.dumps(forged))
    with pytest.raises(AgentError):
        await sink(path, base).check()


async def test_an_existing_different_header_is_never_rewritten(google) -> None:
    fake, creds, base = google
    fake.sheet.rows = [["Date", "Name"]]
    with pytest.raises(ConfigError, match="never rewritten"):
        await sink(creds, base).ensure_header(Layout.build().header)
    assert fake.sheet.rows == [["Date", "Name"]]


async def test_sheets_down_for_a_while_then_back_loses_nothing_and_keeps_order(google, r) -> None:
    fake, creds, base = google
    stream = f"test:{uuid.uuid4().hex[:8]}:completed"
    c = consumer(r, sink(creds, base), stream, write_attempts=2, claim_idle_ms=100)
    try:
        await c.setup()
        await publish(r, stream, outcome(1), outcome(2), outcome(3))
        fake.fail_next(503, count=6)  # longer than one batch's retries
        with pytest.raises(AgentError):
            await c.run_once()
        await publish(r, stream, outcome(4))
        await asyncio.sleep(0.15)  # the failed entries become claimable
        for _ in range(10):
            try:
                if not await c.run_once():
                    break
            except AgentError:
                await asyncio.sleep(0.15)
    finally:
        await r.delete(stream, stream + ":dead")
    assert [row[10] for row in fake.sheet.rows[1:]] == [
        "call-0001",
        "call-0002",
        "call-0003",
        "call-0004",
    ]
