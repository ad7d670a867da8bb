"""A booked call end to end on the data side: a real dialogue through the real engine on Redis,
its calls:completed entry read back, and the sheet row the notifier makes of it."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from callkit.contracts.outcome import parse_entry
from callkit.contracts.streams import CALLS_COMPLETED
from notifier.columns import Layout
from policy_engine.dialogues import load_dialogues, run_dialogue
from policy_engine.engine import DialogEngine
from policy_engine.publishing import RedisPublisher
from policy_engine.script import load_script
from policy_engine.stores.calendar import RedisCalendar
from policy_engine.stores.sessions import RedisSessionStore

ROOT = Path(__file__).parents[2]
SCRIPT = load_script(ROOT / "prompts" / "clinic")


async def test_a_booked_dialogue_becomes_the_row_a_sales_person_reads(
    redis: aioredis.Redis,
) -> None:
    calendar = RedisCalendar(redis, SCRIPT.schedule, prefix=f"test-appt-{uuid.uuid4().hex[:8]}")
    engine = DialogEngine(
        SCRIPT,
        sessions=RedisSessionStore(redis, ttl_s=600),
        calendar=calendar,
        publisher=RedisPublisher(redis),
        llm=None,
        system_prompt="",
        clock=lambda: datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo(SCRIPT.schedule.timezone)),
    )
    spec = load_dialogues([ROOT / "tests" / "dialogues" / "01_happy_knee.yaml"])[0]
    call = f"test-{uuid.uuid4().hex[:12]}"
    # The bridge's hang-up after the script's farewell brings the recording and the figures.
    spec["recording_path"] = f"/var/lib/agent/recordings/{call}.wav"
    spec["latency"] = {"v2v_ms": [640.0, 710.0], "barge_ins": 0}
    last = await redis.xrevrange(CALLS_COMPLETED, count=1)
    since = last[0][0] if last else b"0-0"
    try:
        result = await run_dialogue(engine, spec, call)
        assert result.passed, result.problems
        entries = await redis.xrange(CALLS_COMPLETED, min=f"({since.decode()}")
        mine = [f for _, f in entries if call.encode() in f[b"outcome"]]
        assert len(mine) == 1  # one outcome per call, however the call ended
        outcome = parse_entry(mine[0])
        layout = Layout.build(locale="en")
        row = dict(zip(layout.header, layout.row(outcome), strict=True))
    finally:
        async for key in redis.scan_iter(match=f"{calendar.prefix}:*"):
            await redis.delete(key)
        await redis.delete(f"session:{call}")
    assert row["Status"] == "booked"
    assert row["Client name"] == "John Smith"
    assert row["Appointment"].startswith("2026-11-24 ")
    assert row["Study"] == "MRI of the knee"
    assert row["Price"] == "510 USD"
    assert row["Call ID"] == call
    assert row["Summary"].startswith("Booked MRI of the knee on 2026-11-24")
    assert row["Recording"] == f"/var/lib/agent/recordings/{call}.wav"
    assert outcome.latency.v2v_p50_ms == 640.0
