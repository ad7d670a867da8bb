"""The policy engine on real Redis: sessions, idempotency, barge-in, booking races, outcomes in
the notifier's contract, a dead LLM, and a restart mid-call (the HTTP contract on in-memory
stores is tests/api/test_policy_api.py)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import TypeAdapter
from serving import running_service

from callkit.contracts.outcome import parse_entry
from callkit.errors import ConfigError, NotFound
from callkit.llm_client import LlmClient
from policy_engine.app import create_app
from policy_engine.dialogues import load_dialogues, run_dialogue
from policy_engine.engine import DialogEngine
from policy_engine.events import DialogReply, Event
from policy_engine.metrics import PolicyMetrics
from policy_engine.publishing import RedisPublisher
from policy_engine.script import load_script
from policy_engine.settings import PolicySettings
from policy_engine.stores.calendar import RedisCalendar
from policy_engine.stores.sessions import RedisSessionStore

ROOT = Path(__file__).parents[2]
SCRIPT = load_script(ROOT / "prompts" / "clinic")
SYSTEM = (ROOT / "prompts" / "system.en.txt").read_text(encoding="utf-8")
ZONE = ZoneInfo(SCRIPT.schedule.timezone)
MONDAY_9AM = datetime(2026, 11, 23, 9, 0, tzinfo=ZONE)
EVENT: TypeAdapter[Any] = TypeAdapter(Event)
# The standard answers up to the question "What day would suit you?".
TO_DATE = [
    "My name is Test Caller.",
    "My knee hurts, for two weeks.",
    "Sharp.",
    "No.",
    "Yes.",
    "No.",
]


def redis_engine(redis: aioredis.Redis, **kw: Any) -> tuple[DialogEngine, RedisCalendar]:
    calendar = RedisCalendar(redis, SCRIPT.schedule, prefix=f"test-appt-{uuid.uuid4().hex[:8]}")
    engine = DialogEngine(
        SCRIPT,
        sessions=RedisSessionStore(redis, ttl_s=3600),
        calendar=calendar,
        publisher=RedisPublisher(redis),
        system_prompt=SYSTEM,
        clock=lambda: MONDAY_9AM,
        **{"llm": None, **kw},
    )
    return engine, calendar


@pytest.fixture
async def engine(redis: aioredis.Redis) -> AsyncIterator[DialogEngine]:
    eng, calendar = redis_engine(redis)
    try:
        yield eng
    finally:
        async for key in redis.scan_iter(match=f"{calendar.prefix}:*"):
            await redis.delete(key)


def new_id() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


async def send(engine: DialogEngine, call_id: str, event: dict[str, Any]) -> DialogReply:
    return await engine.handle(call_id, EVENT.validate_python(event))


async def say(engine: DialogEngine, call_id: str, text: str, segment: int | str) -> DialogReply:
    return await send(
        engine, call_id, {"type": "user.utterance", "text": text, "segment_id": segment}
    )


async def to_date_question(engine: DialogEngine, call_id: str) -> DialogReply:
    reply = await send(engine, call_id, {"type": "call.started", "caller": "+15550000000"})
    for i, text in enumerate(TO_DATE):
        reply = await say(engine, call_id, text, i)
    assert reply.state == "ask_appointment_date"
    return reply


def spoken(reply: DialogReply) -> str:
    return " ".join(r.text for r in reply.replies)


# ------------------------------------------------------------------ the engine


async def test_a_retried_utterance_gets_the_same_reply_and_advances_nothing(
    engine: DialogEngine,
) -> None:
    call = new_id()
    await send(engine, call, {"type": "call.started"})
    first = await say(engine, call, "My name is Ada Byron.", "seg-1")
    again = await say(engine, call, "My name is Ada Byron.", "seg-1")
    assert again.replayed
    assert not first.replayed
    assert spoken(again) == spoken(first)
    assert again.state == first.state == "ask_symptoms"
    session = await engine.get(call)
    assert [line.text for line in session.transcript if line.role == "caller"] == [
        "My name is Ada Byron."
    ]


async def test_events_for_an_unknown_session_are_refused(engine: DialogEngine) -> None:
    with pytest.raises(NotFound, match=r"unknown session 'nobody': send call\.started first"):
        await say(engine, "nobody", "Hello?", 1)


async def test_concurrent_calls_never_book_the_same_slot(engine: DialogEngine) -> None:
    calls = [new_id() for _ in range(5)]
    for call in calls:
        await to_date_question(engine, call)
        await say(engine, call, "Tomorrow.", "date")

    async def take(call: str) -> DialogReply:
        return await say(engine, call, "At 11 AM.", "time")

    replies = await asyncio.gather(*(take(c) for c in calls))
    winners = [r for r in replies if r.slots.get("appointment_time") == "11:00"]
    assert len(winners) == 1
    for loser in (r for r in replies if r not in winners):
        assert "that time has just been taken" in spoken(loser)
        assert "appointment_time" not in loser.slots
    owner = await engine.calendar.owner("mri", date(2026, 11, 24), datetime(2026, 1, 1, 11).time())
    assert owner == f"hold:{winners[0].session_id}"


async def test_a_time_taken_by_another_call_is_never_offered(engine: DialogEngine) -> None:
    first, second = new_id(), new_id()
    await to_date_question(engine, first)
    offer = await say(engine, first, "Tomorrow.", "d")
    assert "8 AM" in spoken(offer)
    await say(engine, first, "The first one.", "t")
    await to_date_question(engine, second)
    offer2 = await say(engine, second, "Tomorrow.", "d")
    assert "On Tuesday, November 24 we have" in spoken(offer2)
    assert "8 AM" not in spoken(offer2)


async def test_barge_in_commits_only_what_the_caller_heard(engine: DialogEngine) -> None:
    call = new_id()
    await send(engine, call, {"type": "call.started"})
    for i, text in enumerate(TO_DATE[:4]):
        reply = await say(engine, call, text, i)
    assert "I would recommend an MRI of the knee" in spoken(reply)
    assert "costs $450" in spoken(reply)
    # The caller cut in during the price: the recommendation was heard, the price was not.
    heard = reply.replies[0].text + " An MRI of the"
    cut = await send(
        engine,
        call,
        {
            "type": "user.interrupted",
            "heard_text": heard,
            "utterance": {"text": "Sorry, go on.", "segment_id": "b1"},
        },
    )
    assert "I would recommend" not in spoken(cut)
    assert spoken(cut).startswith("An MRI of the knee costs $450.")
    assert cut.state == "ask_study_decision"
    session = await engine.get(call)
    agent_lines = [line for line in session.transcript if line.role == "agent"]
    interrupted = [line for line in agent_lines if line.interrupted]
    assert len(interrupted) == 1
    assert interrupted[0].text == heard


async def test_a_price_asked_over_the_price_is_said_once(engine: DialogEngine) -> None:
    call = new_id()
    await send(engine, call, {"type": "call.started"})
    for i, text in enumerate(TO_DATE[:4]):
        reply = await say(engine, call, text, i)
    price = next(r.text for r in reply.replies if "costs $450" in r.text)
    # Cut in as the price began: the answer to "how much is it?" is the price, and the script
    # then says again what the caller did not hear, the price among it.
    cut = await send(
        engine,
        call,
        {
            "type": "user.interrupted",
            "heard_text": reply.replies[0].text,
            "utterance": {"text": "Sorry, how much does the scan cost?", "segment_id": "b1"},
        },
    )
    said = [r.text for r in cut.replies]
    assert said.count(price) == 1, said
    assert cut.state == "ask_study_decision"


async def test_a_goodbye_the_caller_talks_over_still_hangs_up(engine: DialogEngine) -> None:
    call = new_id()
    await send(engine, call, {"type": "call.started"})
    await say(engine, call, "My name is Test Caller.", 0)
    bye = await say(engine, call, "No thanks, I'm not interested. Goodbye.", 1)
    assert [a.type for a in bye.actions] == ["hangup"]
    # The caller's last word came in over the goodbye: the bridge stopped that turn, and its
    # hang-up with it. The call must still end.
    cut = await send(
        engine,
        call,
        {
            "type": "user.interrupted",
            "heard_text": bye.replies[0].text.split()[0],
            "utterance": {"text": "Bye.", "segment_id": "b2"},
        },
    )
    assert [a.type for a in cut.actions] == ["hangup"]
    silence = await send(engine, call, {"type": "user.silence", "seconds": 7, "event_id": "s1"})
    assert [a.type for a in silence.actions] == ["hangup"]
    # Words said before the goodbye began stopped it at once: the caller heard none of it, so
    # it is said again before the hang-up (and not when some of it was heard, as above).
    unheard = await send(
        engine,
        call,
        {
            "type": "user.interrupted",
            "heard_text": "",
            "utterance": {"text": "That is too much.", "segment_id": "b3"},
        },
    )
    assert [r.text for r in unheard.replies] == [r.text for r in bye.replies]
    assert [a.type for a in unheard.actions] == ["hangup"]
    assert not cut.replies


async def test_hanging_up_frees_the_held_slot_and_writes_one_outcome(
    engine: DialogEngine, redis: aioredis.Redis
) -> None:
    call = new_id()
    await to_date_question(engine, call)
    await say(engine, call, "Tomorrow.", "d")
    held = await say(engine, call, "At 10 AM.", "t")
    assert held.slots["appointment_time"] == "10:00"
    slot = (date(2026, 11, 24), datetime(2026, 1, 1, 10).time())
    assert await engine.calendar.owner("mri", *slot) == f"hold:{call}"
    before = await redis.xlen("calls:completed")
    await send(engine, call, {"type": "call.ended", "cause": "NORMAL_CLEARING"})
    await send(engine, call, {"type": "call.ended", "cause": "NORMAL_CLEARING"})
    assert await engine.calendar.owner("mri", *slot) is None
    entries = await redis.xrevrange("calls:completed", count=5)
    assert await redis.xlen("calls:completed") == before + 1
    outcome = next(parse_entry(f) for _, f in entries if call.encode() in f[b"outcome"])
    assert outcome.status == "incomplete"
    assert outcome.hangup_cause == "NORMAL_CLEARING"
    assert outcome.slots.client_name == "Test Caller"
    assert outcome.slots.appointment_date is None  # not booked, so no appointment in the row


async def test_a_booked_call_lands_on_calls_completed_in_the_notifiers_contract(
    engine: DialogEngine, redis: aioredis.Redis
) -> None:
    spec = load_dialogues([ROOT / "tests" / "dialogues" / "01_happy_knee.yaml"])[0]
    call = new_id()
    result = await run_dialogue(engine, spec, call)
    assert result.passed, result.problems
    entries = await redis.xrevrange("calls:completed", count=20)
    outcome = next(parse_entry(f) for _, f in entries if call.encode() in f[b"outcome"])
    assert outcome.status == "booked"
    assert outcome.slots.study_type == "MRI of the knee"
    assert outcome.slots.price == 510  # study + video conclusion, from the catalogue
    assert outcome.slots.appointment_date == "2026-11-24"
    assert outcome.summary
    assert outcome.summary.startswith("Booked MRI of the knee on 2026-11-24")
    assert outcome.transcript[0].role == "agent"
    assert any(line.text == "555 123 4567" for line in outcome.transcript)
    assert (
        await engine.calendar.owner(
            "mri",
            date(2026, 11, 24),
            datetime.strptime(outcome.slots.appointment_time or "", "%H:%M").time(),
        )
        == f"booked:{call}"
    )


async def test_with_the_llm_down_the_script_goes_on_and_metrics_say_so(
    redis_url: str, dead_port: int
) -> None:
    redis = aioredis.Redis.from_url(redis_url)
    llm = LlmClient(f"http://127.0.0.1:{dead_port}/v1", "clinic-agent", retries=0)
    metrics = PolicyMetrics()
    eng, calendar = redis_engine(redis, llm=llm, metrics=metrics)
    try:
        spec = load_dialogues([ROOT / "tests" / "dialogues" / "36_symptoms_unusual_words.yaml"])[0]
        result = await run_dialogue(eng, spec, new_id())
        assert result.passed, result.problems
        call = new_id()
        await send(eng, call, {"type": "call.started"})
        answer = await say(eng, call, "Is the machine very loud inside?", 1)
        assert "I'm not able to answer that" in spoken(answer)
        assert answer.state == "ask_client_name"
        # The free question needed the LLM: the turn that went on without it is counted.
        assert metrics.degraded._value.get() >= 1
    finally:
        await llm.aclose()
        async for key in redis.scan_iter(match=f"{calendar.prefix}:*"):
            await redis.delete(key)
        await redis.aclose()


async def test_delete_forgets_the_call_and_frees_its_hold(engine: DialogEngine) -> None:
    call = new_id()
    await to_date_question(engine, call)
    await say(engine, call, "Tomorrow.", "d")
    await say(engine, call, "At 4 PM.", "t")
    slot = (date(2026, 11, 24), datetime(2026, 1, 1, 16).time())
    assert await engine.calendar.owner("mri", *slot) == f"hold:{call}"
    await engine.delete(call)
    assert await engine.calendar.owner("mri", *slot) is None
    with pytest.raises(NotFound):
        await engine.get(call)


# ------------------------------------------------------------------ the HTTP contract


def open_weekday(days_ahead: int = 2) -> date:
    """A weekday the clinic is open, a few days from the real today (the service's clock)."""
    day = datetime.now(ZONE).date() + timedelta(days=days_ahead)
    while SCRIPT.schedule.hours(day) is None or day.weekday() >= 5:
        day += timedelta(days=1)
    return day


# ------------------------------------------------------------------ a restart mid-call


def test_an_engine_restart_mid_call_loses_nothing(
    redis_url: str, free_port: int, tmp_path: Path
) -> None:
    env = {
        "POLICY_PORT": str(free_port),
        "REDIS_URL": redis_url,
        "POLICY_LLM_ENABLED": "false",
        "POLICY_CALENDAR_NAMESPACE": f"test-appt-{uuid.uuid4().hex[:8]}",
    }
    call = new_id()
    url = f"http://127.0.0.1:{free_port}/dialog"
    day = open_weekday(3)

    def turn(event: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(url, json={"session_id": call, "event": event}, timeout=10)
        assert response.status_code == 200, response.text
        return dict(response.json())

    with running_service("policy_engine", env, free_port, ready_path="/ready") as proc:
        turn({"type": "call.started", "caller": "+15550003333"})
        for i, text in enumerate([*TO_DATE, day.isoformat()]):
            reply = turn({"type": "user.utterance", "text": text, "segment_id": i})
        assert reply["state"] == "offer_appointment_times"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    with running_service("policy_engine", env, free_port, ready_path="/ready"):
        # The retry of the last segment is answered from the stored reply, not run again.
        again = turn({"type": "user.utterance", "text": day.isoformat(), "segment_id": 6})
        assert again["replayed"] is True
        assert again["state"] == "offer_appointment_times"
        for i, text in enumerate(
            ["The first one.", "Yes.", "This number.", "40 and 70 kilos.", "No.", "No.", "Yes."], 10
        ):
            reply = turn({"type": "user.utterance", "text": text, "segment_id": i})
        assert reply["status"] == "booked"
        assert reply["slots"]["client_name"] == "Test Caller"
        assert reply["slots"]["appointment_date"] == day.isoformat()


def test_the_engine_refuses_to_start_on_a_broken_script(tmp_path: Path, redis_url: str) -> None:
    broken = tmp_path / "clinic"
    shutil.copytree(ROOT / "prompts" / "clinic", broken)
    text = (broken / "script.yaml").read_text(encoding="utf-8")
    (broken / "script.yaml").write_text(text.replace("next: ask_age_weight", "next: ask_agee"))
    with pytest.raises(
        ConfigError, match="state 'ask_phone': next state 'ask_agee' is not a state"
    ):
        create_app(PolicySettings.load(redis_url=redis_url, script_dir=broken))
