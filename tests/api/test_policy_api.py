"""The policy engine's HTTP API in process, on in-memory stores and a fixed clock: the JSON and
SSE replies, a whole booking with its outcome and live events, the outcome of a call whose
hang-up never comes, barge-ins, retries, bad input."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi.testclient import TestClient
from policy_fakes import MemoryCalendar, MemoryDeadlines, MemoryPublisher, MemorySessions

from callkit.contracts.live import StateChanged, TurnTimed
from callkit.contracts.outcome import CallOutcome
from policy_engine.app import create_app
from policy_engine.script import load_script
from policy_engine.settings import PolicySettings

ROOT = Path(__file__).parents[2]
SCRIPT = load_script(ROOT / "prompts" / "clinic")
MONDAY_9AM = datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo(SCRIPT.schedule.timezone))
TUESDAY = date(2026, 11, 24)
# The standard answers up to the question "What day would suit you?".
TO_DATE = [
    "My name is Test Caller.",
    "My knee hurts, for two weeks.",
    "Sharp.",
    "No.",
    "Yes.",
    "No.",
]
AFTER_TIME = ["Yes.", "This number.", "40 and 70 kilos.", "No.", "No.", "Yes."]


class Stack:
    def __init__(self) -> None:
        self.sessions = MemorySessions()
        self.calendar = MemoryCalendar(SCRIPT.schedule)
        self.publisher = MemoryPublisher()
        self.deadlines = MemoryDeadlines()
        self.now = MONDAY_9AM

    def later(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def stack() -> Stack:
    return Stack()


@pytest.fixture
def client(stack: Stack) -> Iterator[TestClient]:
    settings = PolicySettings.load(
        llm_enabled=False,
        script_dir=ROOT / "prompts" / "clinic",
        system_prompt_file=ROOT / "prompts" / "system.en.txt",
        max_text_chars=500,
        max_body_bytes=4096,
        # Nothing listens here: any use of Redis would fail the test.
        redis_url="redis://127.0.0.1:1/0",
        outcome_exit_grace_s=60,
        outcome_idle_s=600,
        outcome_sweep_interval_s=0.01,
    )
    app = create_app(
        settings,
        sessions=stack.sessions,
        calendar=stack.calendar,
        publisher=stack.publisher,
        deadlines=stack.deadlines,
        clock=lambda: stack.now,
    )
    with TestClient(app) as c:
        yield c


def post(client: TestClient, session_id: str, event: dict[str, Any], **kw: Any) -> httpx.Response:
    return client.post("/dialog", json={"session_id": session_id, "event": event}, **kw)


def say(client: TestClient, call: str, text: str, segment: int | str) -> dict[str, Any]:
    response = post(client, call, {"type": "user.utterance", "text": text, "segment_id": segment})
    assert response.status_code == 200, response.json()
    return dict(response.json())


def spoken(reply: dict[str, Any]) -> str:
    return " ".join(r["text"] for r in reply["replies"])


def to_date_question(client: TestClient, call: str) -> dict[str, Any]:
    post(client, call, {"type": "call.started", "caller": "+15550002222"})
    for i, text in enumerate(TO_DATE):
        reply = say(client, call, text, i)
    assert reply["state"] == "ask_appointment_date"
    return reply


def book_without_hanging_up(client: TestClient, call: str) -> None:
    to_date_question(client, call)
    say(client, call, "Tomorrow.", "d")
    say(client, call, "The first one.", "t")
    for i, text in enumerate(AFTER_TIME):
        reply = say(client, call, text, f"a{i}")
    assert reply["status"] == "booked"


def outcomes_after_sweeps(stack: Stack, wanted: int = 1) -> list[CallOutcome]:
    """The outcomes once the app's sweeper (every 10 ms) has had the time to write ``wanted``."""
    deadline = time.monotonic() + 2.0
    while len(stack.publisher.outcomes) < wanted and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # a few more sweeps, for anything written twice
    return list(stack.publisher.outcomes)


def sse_events(body: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_ready_without_redis_when_every_store_is_given(client: TestClient) -> None:
    ready = client.get("/ready")
    assert ready.status_code == 200, ready.json()
    assert "redis" not in ready.json()["checks"]


def test_sse_streams_each_sentence_then_reply_done(client: TestClient) -> None:
    with client.stream(
        "POST",
        "/dialog",
        json={"session_id": "c1", "event": {"type": "call.started", "caller": "+15550001111"}},
        headers={"Accept": "text/event-stream"},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.read().decode())
    assert [k for k, _ in events] == ["reply.sentence", "reply.sentence", "reply.done"]
    assert events[0][1]["text"].startswith("Hello! You've reached the RUMA Diagnostic Center")
    assert events[0][1]["cache_key"] == "greeting.say.en"
    assert events[-1][1]["state"] == "ask_client_name"
    assert events[-1][1]["actions"] == [{"type": "none"}]
    assert "replies" not in events[-1][1]


async def test_a_whole_booking_writes_one_outcome_and_books_the_slot(
    client: TestClient, stack: Stack
) -> None:
    to_date_question(client, "c2")
    offer = say(client, "c2", "Tomorrow.", "d")
    assert "On Tuesday, November 24 we have 8 AM" in spoken(offer)
    say(client, "c2", "The first one.", "t")
    assert await stack.calendar.owner("mri", TUESDAY, clock_time(8)) == "hold:c2"
    for i, text in enumerate(AFTER_TIME):
        reply = say(client, "c2", text, f"a{i}")
    assert reply["status"] == "booked"
    assert reply["ended"] is True
    assert reply["actions"] == [{"type": "hangup"}]
    assert reply["slots"]["phone"] == "+15550002222"
    assert stack.publisher.outcomes == []  # written when the bridge reports the hang-up
    post(client, "c2", {"type": "call.ended", "cause": "NORMAL_CLEARING"})
    post(client, "c2", {"type": "call.ended", "cause": "NORMAL_CLEARING"})
    [outcome] = stack.publisher.outcomes
    assert outcome.call_id == "c2"
    assert outcome.status == "booked"
    assert (outcome.slots.appointment_date, outcome.slots.appointment_time) == (
        "2026-11-24",
        "08:00",
    )
    assert outcome.slots.study_type == "MRI of the knee"
    assert outcome.summary is not None
    assert outcome.summary.startswith("Booked MRI of the knee on 2026-11-24 at 08:00")
    changes = [e for e in stack.publisher.events if isinstance(e, StateChanged)]
    assert ("confirm_appointment", "farewell") in {(e.from_state, e.to_state) for e in changes}
    assert sum(isinstance(e, TurnTimed) for e in stack.publisher.events) == 1 + len(TO_DATE) + 8
    assert await stack.calendar.owner("mri", TUESDAY, clock_time(8)) == "booked:c2"
    metrics = client.get("/metrics").text
    assert 'policy_calls_completed_total{status="booked"} 1.0' in metrics
    assert "policy_turn_seconds_bucket" in metrics


async def test_a_booked_slot_is_never_offered_to_the_next_call(
    client: TestClient, stack: Stack
) -> None:
    to_date_question(client, "first")
    say(client, "first", "Tomorrow.", "d")
    say(client, "first", "At 8 AM.", "t")
    assert await stack.calendar.owner("mri", TUESDAY, clock_time(8)) == "hold:first"
    to_date_question(client, "second")
    offer = say(client, "second", "Tomorrow.", "d")
    assert "On Tuesday, November 24 we have" in spoken(offer)
    assert "8 AM" not in spoken(offer)
    taken = say(client, "second", "At 8 AM.", "t")
    assert "that time has just been taken" in spoken(taken)
    assert "appointment_time" not in taken["slots"]


def test_the_outcome_carries_the_bridges_recording_and_latency(
    client: TestClient, stack: Stack
) -> None:
    to_date_question(client, "c3")
    ended = post(
        client,
        "c3",
        {
            "type": "call.ended",
            "cause": "NORMAL_CLEARING",
            "recording_path": "/var/lib/agent/recordings/c3.wav",
            "latency": {"v2v_ms": [610.0, 720.5, 580.0], "barge_ins": 1},
        },
    )
    assert ended.status_code == 200, ended.json()
    [outcome] = stack.publisher.outcomes
    assert outcome.status == "incomplete"
    assert outcome.hangup_cause == "NORMAL_CLEARING"
    assert outcome.recording_path == "/var/lib/agent/recordings/c3.wav"
    assert outcome.latency.v2v_ms == [610.0, 720.5, 580.0]
    assert outcome.latency.v2v_p50_ms == 610.0
    assert outcome.latency.barge_ins == 1


def test_a_booked_call_whose_hang_up_never_comes_gets_its_row_after_the_grace(
    client: TestClient, stack: Stack
) -> None:
    book_without_hanging_up(client, "lost1")
    stack.later(59)
    assert outcomes_after_sweeps(stack, wanted=0) == []
    stack.later(2)
    [outcome] = outcomes_after_sweeps(stack)
    assert outcome.call_id == "lost1"
    assert outcome.status == "booked"
    assert outcome.hangup_cause == "LOST_NO_CALL_ENDED"
    assert (outcome.slots.appointment_date, outcome.slots.appointment_time) == (
        "2026-11-24",
        "08:00",
    )
    assert outcome.recording_path is None
    assert outcome.transcript[-1].role == "agent"
    # The bridge's late hang-up adds no second row.
    post(client, "lost1", {"type": "call.ended", "cause": "NORMAL_CLEARING"})
    assert outcomes_after_sweeps(stack, wanted=2) == [outcome]
    assert 'policy_calls_completed_total{status="booked"} 1.0' in client.get("/metrics").text


def test_a_call_lost_mid_script_is_written_incomplete_after_the_idle_spell(
    client: TestClient, stack: Stack
) -> None:
    to_date_question(client, "lost2")
    say(client, "lost2", "Tomorrow.", "d")
    say(client, "lost2", "At 4 PM.", "t")
    stack.later(300)
    say(client, "lost2", "Yes.", "c")  # an event: the idle spell starts again
    stack.later(599)
    assert outcomes_after_sweeps(stack, wanted=0) == []
    stack.later(2)
    [outcome] = outcomes_after_sweeps(stack)
    assert outcome.status == "incomplete"
    assert outcome.hangup_cause == "LOST_NO_CALL_ENDED"
    # The held time is free again for the next caller.
    to_date_question(client, "next")
    assert say(client, "next", "Tomorrow at 4 PM.", "d")["slots"]["appointment_time"] == "16:00"


def test_a_hang_up_before_the_deadline_writes_one_row_with_the_recording(
    client: TestClient, stack: Stack
) -> None:
    book_without_hanging_up(client, "kept")
    assert "kept" in stack.deadlines.due
    post(
        client,
        "kept",
        {"type": "call.ended", "cause": "NORMAL_CLEARING", "recording_path": "/rec/kept.wav"},
    )
    assert stack.deadlines.due == {}
    stack.later(3600)
    [outcome] = outcomes_after_sweeps(stack, wanted=2)
    assert outcome.hangup_cause == "NORMAL_CLEARING"
    assert outcome.recording_path == "/rec/kept.wav"
    assert outcome.status == "booked"


def test_a_barge_in_goes_back_to_the_sentence_the_caller_did_not_hear(client: TestClient) -> None:
    post(client, "c4", {"type": "call.started"})
    for i, text in enumerate(TO_DATE[:4]):
        reply = say(client, "c4", text, i)
    recommendation = reply["replies"][0]["text"]
    assert "I would recommend an MRI of the knee" in recommendation
    cut = post(
        client,
        "c4",
        {
            "type": "user.interrupted",
            "heard_text": recommendation + " An MRI of the",
            "utterance": {"text": "Sorry, go on.", "segment_id": "b1"},
        },
    ).json()
    assert spoken(cut).startswith("An MRI of the knee costs $450.")
    assert "I would recommend" not in spoken(cut)
    assert cut["state"] == "ask_study_decision"
    session = client.get("/session/c4").json()
    interrupted = [line for line in session["transcript"] if line["interrupted"]]
    assert [line["text"] for line in interrupted] == [recommendation + " An MRI of the"]


def test_a_retried_utterance_is_answered_from_the_stored_reply(client: TestClient) -> None:
    post(client, "c5", {"type": "call.started"})
    first = say(client, "c5", "My name is Ada Byron.", "seg-1")
    again = say(client, "c5", "My name is Ada Byron.", "seg-1")
    assert again["replayed"] is True
    assert spoken(again) == spoken(first)
    assert again["state"] == first["state"] == "ask_symptoms"
    session = client.get("/session/c5").json()
    assert [line["text"] for line in session["transcript"] if line["role"] == "caller"] == [
        "My name is Ada Byron."
    ]


def test_delete_forgets_the_call_and_frees_its_hold(client: TestClient, stack: Stack) -> None:
    to_date_question(client, "c6")
    say(client, "c6", "Tomorrow.", "d")
    say(client, "c6", "At 4 PM.", "t")
    assert client.delete("/session/c6").status_code == 204
    assert client.get("/session/c6").status_code == 404
    to_date_question(client, "c7")
    assert say(client, "c7", "Tomorrow at 4 PM.", "d")["slots"]["appointment_time"] == "16:00"


@pytest.mark.parametrize(
    ("body", "status", "code", "detail"),
    [
        (b"{not json", 400, "invalid_json", "body is not valid JSON"),
        (
            json.dumps(
                {"session_id": "s1", "event": {"type": "user.shout", "text": "hi"}}
            ).encode(),
            400,
            "unknown_event",
            "unknown event type 'user.shout'; expected one of call.started, user.utterance",
        ),
        (
            json.dumps({"session_id": "s1", "event": {"type": "user.utterance"}}).encode(),
            400,
            "invalid_event",
            "event.user.utterance.text: Field required",
        ),
        (
            json.dumps({"session_id": "bad id!", "event": {"type": "call.ended"}}).encode(),
            400,
            "invalid_event",
            "session_id: String should match pattern",
        ),
        (
            json.dumps({"session_id": "s1", "event": {"type": "dtmf", "digits": "12x"}}).encode(),
            400,
            "invalid_event",
            "digits",
        ),
        (b"[1, 2]", 400, "invalid_event", "malformed dialog request"),
        (b"x" * 5000, 413, "payload_too_large", "the limit is 4096 (POLICY_MAX_BODY_BYTES)"),
    ],
    ids=[
        "not-json",
        "unknown-type",
        "missing-field",
        "bad-session-id",
        "bad-dtmf",
        "not-object",
        "too-big",
    ],
)
def test_malformed_requests_get_clear_errors(
    client: TestClient, body: bytes, status: int, code: str, detail: str
) -> None:
    response = client.post("/dialog", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.json()
    assert response.json()["code"] == code
    assert detail in response.json()["detail"]


def test_oversized_text_unknown_sessions_and_sse_errors(client: TestClient) -> None:
    post(client, "c8", {"type": "call.started"})
    long = post(client, "c8", {"type": "user.utterance", "text": "a" * 501, "segment_id": 1})
    assert long.status_code == 413
    assert (
        "text is 501 characters; the limit is 500 (POLICY_MAX_TEXT_CHARS)"
        in (long.json()["detail"])
    )
    event = {"type": "user.utterance", "text": "hi", "segment_id": 1}
    unknown = post(client, "no-such-call", event)
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "unknown_session"
    streamed = post(client, "no-such-call", event, headers={"Accept": "text/event-stream"})
    assert streamed.status_code == 404  # failed before the first sentence: a plain error
    # The session the errors came between still works.
    assert say(client, "c8", "My name is Bo Li.", 2)["state"] == "ask_symptoms"


# ------------------------------------------------------------------ a withheld caller id

CALL_ME_LATER = "I'm driving right now, can you call me back later?"


@pytest.mark.parametrize("caller", ["anonymous", "", None])
def test_a_withheld_caller_asking_for_a_call_back_is_given_the_clinics_number(
    client: TestClient, stack: Stack, caller: str | None
) -> None:
    call = f"hidden-{caller}"
    post(client, call, {"type": "call.started", "caller": caller})
    say(client, call, "Betty Allen.", 1)
    goodbye = say(client, call, CALL_ME_LATER, 2)
    assert goodbye["status"] == "callback"
    assert goodbye["actions"] == [{"type": "hangup"}]
    text = spoken(goodbye)
    assert "your number is hidden, so we can't call you back" in text
    assert f"Please call us at {SCRIPT.clinic.phone}" in text
    assert "we will call you back" not in text
    post(client, call, {"type": "call.ended", "cause": "NORMAL_CLEARING"})
    [outcome] = stack.publisher.outcomes
    assert (outcome.status, outcome.slots.phone) == ("callback", None)


@pytest.mark.parametrize(
    ("caller", "turns"),
    [
        # The caller id is a number: the dialer calls it back.
        ("+15551919191", ["Betty Allen.", CALL_ME_LATER]),
        # Withheld, but the caller gave a number on the call: the dialer calls that one.
        ("anonymous", ["Betty Allen, my number is 555 191 9191.", CALL_ME_LATER]),
    ],
    ids=["caller-id", "number-given"],
)
def test_a_caller_with_a_number_to_call_is_promised_the_call_back(
    client: TestClient, stack: Stack, caller: str, turns: list[str]
) -> None:
    call = "known-given" if caller == "anonymous" else "known-caller-id"
    post(client, call, {"type": "call.started", "caller": caller})
    for i, text in enumerate(turns):
        goodbye = say(client, call, text, i)
    assert goodbye["status"] == "callback"
    assert spoken(goodbye) == "Of course, we will call you back later. Goodbye!"
    post(client, call, {"type": "call.ended", "cause": "NORMAL_CLEARING"})
    [outcome] = stack.publisher.outcomes
    assert (outcome.slots.phone or outcome.caller) == "+15551919191"  # what the dialer calls


def test_this_number_is_no_answer_when_the_caller_id_is_withheld(client: TestClient) -> None:
    call = "hidden-phone"
    post(client, call, {"type": "call.started", "caller": "anonymous"})
    for i, text in enumerate([*TO_DATE, "Tomorrow.", "The first one.", "Yes."]):
        reply = say(client, call, text, i)
    assert reply["state"] == "ask_phone"
    again = say(client, call, "This number.", "p")
    assert again["state"] == "ask_phone"  # asked again: there is no number to take
    assert "phone" not in again["slots"]
    given = say(client, call, "555 191 9191.", "p2")
    assert given["slots"]["phone"] == "+15551919191"
