"""Calls whose hang-up never reaches the engine, on real Redis with two replicas sharing it: the
outcome is written once after the deadline, by one replica, and a call.ended in time wins."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis
from pydantic import TypeAdapter

from callkit.contracts.outcome import CallOutcome, parse_entry
from policy_engine.deadlines import LOST_CAUSE
from policy_engine.engine import DialogEngine
from policy_engine.events import DialogReply, Event
from policy_engine.publishing import RedisPublisher
from policy_engine.script import load_script
from policy_engine.stores.calendar import RedisCalendar
from policy_engine.stores.deadlines import RedisOutcomeDeadlines
from policy_engine.stores.sessions import RedisSessionStore

ROOT = Path(__file__).parents[2]
SCRIPT = load_script(ROOT / "prompts" / "clinic")
SYSTEM = (ROOT / "prompts" / "system.en.txt").read_text(encoding="utf-8")
MONDAY_9AM = datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo(SCRIPT.schedule.timezone))
EVENT: TypeAdapter[Any] = TypeAdapter(Event)
BOOKING = [
    "My name is Test Caller.",
    "My knee hurts, for two weeks.",
    "Sharp.",
    "No.",
    "Yes.",
    "No.",
    "Tomorrow.",
    "The first one.",
    "Yes.",
    "This number.",
    "40 and 70 kilos.",
    "No.",
    "No.",
    "Yes.",
]


@dataclass
class Replicas:
    """Two engines on one Redis, as two policy engine processes would be, on one clock."""

    a: DialogEngine
    b: DialogEngine
    deadlines: RedisOutcomeDeadlines
    redis: aioredis.Redis
    now: list[datetime]

    def later(self, seconds: float) -> None:
        self.now[0] += timedelta(seconds=seconds)

    async def outcomes(self, call_id: str) -> list[CallOutcome]:
        entries = await self.redis.xrevrange("calls:completed", count=200)
        return [parse_entry(f) for _, f in entries if call_id.encode() in f[b"outcome"]]


@pytest.fixture
async def replicas(redis: aioredis.Redis) -> AsyncIterator[Replicas]:
    tag = uuid.uuid4().hex[:8]
    deadlines = RedisOutcomeDeadlines(redis, key=f"test-outcome-due-{tag}", lease_s=120)
    calendar = RedisCalendar(redis, SCRIPT.schedule, prefix=f"test-appt-{tag}")
    now = [MONDAY_9AM]

    def engine() -> DialogEngine:
        return DialogEngine(
            SCRIPT,
            sessions=RedisSessionStore(redis, ttl_s=3600),
            calendar=calendar,
            publisher=RedisPublisher(redis),
            llm=None,
            system_prompt=SYSTEM,
            clock=lambda: now[0],
            deadlines=deadlines,
            outcome_exit_grace_s=60,
            outcome_idle_s=600,
        )

    try:
        yield Replicas(engine(), engine(), deadlines, redis, now)
    finally:
        await redis.delete(deadlines.key)
        async for key in redis.scan_iter(match=f"{calendar.prefix}:*"):
            await redis.delete(key)


async def send(engine: DialogEngine, call_id: str, event: dict[str, Any]) -> DialogReply:
    return await engine.handle(call_id, EVENT.validate_python(event))


async def book(engine: DialogEngine, call_id: str) -> None:
    await send(engine, call_id, {"type": "call.started", "caller": "+15550000000"})
    for i, text in enumerate(BOOKING):
        reply = await send(
            engine, call_id, {"type": "user.utterance", "text": text, "segment_id": i}
        )
    assert reply.status == "booked"


def new_id() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


async def test_two_replicas_sweeping_at_once_write_one_outcome(replicas: Replicas) -> None:
    calls = [new_id() for _ in range(3)]
    for call in calls:
        await book(replicas.a, call)
    assert await replicas.a.sweep() == 0  # not due yet
    replicas.later(61)
    written = await asyncio.gather(*(r.sweep() for r in (replicas.a, replicas.b, replicas.a)))
    assert sum(written) == 3
    for call in calls:
        [outcome] = await replicas.outcomes(call)
        assert (outcome.status, outcome.hangup_cause) == ("booked", LOST_CAUSE)
    assert await replicas.redis.zcard(replicas.deadlines.key) == 0


async def test_concurrent_claims_hand_each_due_call_to_one_claimer(replicas: Replicas) -> None:
    for i in range(40):
        await replicas.deadlines.schedule(f"claim-{i}", 1000.0 + i)
    await replicas.deadlines.schedule("not-yet", 5000.0)
    claims = await asyncio.gather(*(replicas.deadlines.claim_due(2000.0, 7) for _ in range(8)))
    claimed = [call for claim in claims for call in claim]
    assert sorted(claimed) == sorted(f"claim-{i}" for i in range(40))


async def test_replicas_expiring_the_same_call_at_once_write_it_once(replicas: Replicas) -> None:
    call = new_id()
    await book(replicas.a, call)
    replicas.later(61)
    now = replicas.now[0].timestamp()
    # Past the claim (a claim outlived by its lease, or two claimers): the session decides.
    written = await asyncio.gather(replicas.a.expire(call, now), replicas.b.expire(call, now))
    assert sorted(written) == [False, True]
    assert len(await replicas.outcomes(call)) == 1


async def test_a_replica_that_dies_after_claiming_loses_no_outcome(replicas: Replicas) -> None:
    call = new_id()
    await book(replicas.a, call)
    replicas.later(61)
    now = replicas.now[0].timestamp()
    assert await replicas.deadlines.claim_due(now, 10) == [call]  # and then it died
    assert await replicas.b.sweep() == 0  # claimed: not due for anyone else yet
    replicas.later(121)
    assert await replicas.b.sweep() == 1
    [outcome] = await replicas.outcomes(call)
    assert outcome.status == "booked"


async def test_an_event_after_the_claim_keeps_the_call_alive(replicas: Replicas) -> None:
    call = new_id()
    await send(replicas.a, call, {"type": "call.started"})
    replicas.later(601)
    now = replicas.now[0].timestamp()
    assert await replicas.deadlines.claim_due(now, 10) == [call]
    await send(replicas.b, call, {"type": "user.utterance", "text": "Hello?", "segment_id": 1})
    assert await replicas.a.expire(call, now) is False
    assert await replicas.outcomes(call) == []
    score = await replicas.redis.zscore(replicas.deadlines.key, call)
    assert score == pytest.approx(now + 600)


async def test_call_ended_in_time_writes_one_outcome_with_the_recording(
    replicas: Replicas,
) -> None:
    call = new_id()
    await book(replicas.a, call)
    replicas.later(30)
    ended = {"type": "call.ended", "cause": "NORMAL_CLEARING", "recording_path": "/rec/x.wav"}
    await send(replicas.b, call, ended)
    assert await replicas.redis.zscore(replicas.deadlines.key, call) is None
    replicas.later(3000)
    assert await replicas.a.sweep() + await replicas.b.sweep() == 0
    [outcome] = await replicas.outcomes(call)
    assert (outcome.hangup_cause, outcome.recording_path) == ("NORMAL_CLEARING", "/rec/x.wav")
