"""The call outcome built from a session: status, price from the catalogue, the one-line summary,
what the bridge sent on call.ended, and when it is due without one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from callkit.contracts.outcome import CallLatency, parse_entry
from callkit.contracts.outcome import entry as outcome_entry
from callkit.errors import ConfigError
from policy_engine.deadlines import outcome_due_at
from policy_engine.outcome import build_outcome, final_status, summary, total_price
from policy_engine.script import load_script
from policy_engine.session import Hold, Line, Session
from policy_engine.settings import PolicySettings

SCRIPT = load_script(Path(__file__).parents[2] / "prompts" / "clinic")
KNEE = {"study_type": "mri_knee", "appointment_date": "2026-11-24", "appointment_time": "10:00"}


def session(**kw: Any) -> Session:
    return Session(session_id="call-1", started_at=1000.0, ended_at=1065.5, **kw)


@pytest.mark.parametrize(
    ("status", "hold", "expected"),
    [
        ("transferred", None, "transferred"),
        (None, Hold(modality="mri", date="2026-11-24", time="10:00", booked=True), "booked"),
        (None, Hold(modality="mri", date="2026-11-24", time="10:00"), "incomplete"),
        (None, None, "incomplete"),
    ],
    ids=["the-scripts-exit", "booked-then-hung-up", "only-held", "nothing"],
)
def test_status(status: str | None, hold: Hold | None, expected: str) -> None:
    assert final_status(session(status=status, hold=hold)) == expected


@pytest.mark.parametrize(
    ("slots", "price"),
    [
        ({}, None),
        ({"study_type": "mri_knee"}, 450.0),
        ({"study_type": "mri_knee", "video_conclusion": True}, 510.0),
        ({"study_type": "mri_knee", "video_conclusion": True, "discount": True}, 459.0),
        ({"study_type": "mri_knee", "video_conclusion": False, "discount": False}, 450.0),
    ],
)
def test_price_comes_from_the_catalogue(slots: dict[str, Any], price: float | None) -> None:
    assert total_price(SCRIPT, slots) == price


@pytest.mark.parametrize(
    ("slots", "status", "line"),
    [
        (
            {**KNEE, "symptoms": "my knee hurts", "symptoms_duration": "2 weeks"},
            "booked",
            "Booked MRI of the knee on 2026-11-24 at 10:00; complaint: my knee hurts for 2 weeks.",
        ),
        (
            {"study_type": "mri_knee", "video_conclusion": True, "contraindications": True},
            "callback",
            "Callback; discussed MRI of the knee; with video conclusion; "
            "has contraindications to check.",
        ),
        ({}, "wrong_number", "Wrong number."),
    ],
)
def test_summary_for_the_sales_staff(slots: dict[str, Any], status: str, line: str) -> None:
    assert summary(SCRIPT, session(slots=slots), status) == line


def test_a_booked_call_maps_to_the_contract_and_survives_the_stream() -> None:
    s = session(
        status="booked",
        slots={**KNEE, "client_name": "Ada Byron", "phone": "+15551234567", "age": 40},
        final_state="farewell",
        recording_path="/rec/call-1.wav",
        latency=CallLatency(v2v_ms=[700.0, 650.0], barge_ins=1),
        transcript=[Line(role="agent", text="Hello!", at=1000.5)],
    )
    outcome = build_outcome(SCRIPT, s)
    assert outcome.status == "booked"
    assert outcome.duration_s == 65.5
    assert outcome.slots.study_type == "MRI of the knee"  # the sheet's name, no article
    assert (outcome.slots.appointment_date, outcome.slots.appointment_time) == (
        "2026-11-24",
        "10:00",
    )
    assert (outcome.slots.price, outcome.slots.currency) == (450.0, "USD")
    assert outcome.transcript[0].t == 0.5
    assert outcome.recording_path == "/rec/call-1.wav"
    assert outcome.latency.v2v_p50_ms == 650.0
    wire = {k.encode(): v.encode() for k, v in outcome_entry(outcome).items()}
    assert parse_entry(wire) == outcome


def test_the_outcome_says_the_language_the_call_was_held_in() -> None:
    """The dialer calls a caller back in the language they spoke (its callbacks campaign of
    that language), so the outcome carries the session's locale."""
    ru = load_script(Path(__file__).parents[2] / "prompts" / "clinic_ru")
    outcome = build_outcome(
        ru, session(status="callback", locale="ru", slots={"study_type": "mri_knee"})
    )
    assert outcome.locale == "ru"
    assert outcome.slots.study_type == "МРТ коленного сустава"
    assert build_outcome(SCRIPT, session(status="callback")).locale == "en"


def test_an_unbooked_call_carries_no_appointment() -> None:
    outcome = build_outcome(SCRIPT, session(status="not_interested", slots=KNEE))
    assert outcome.slots.appointment_date is None
    assert outcome.slots.appointment_time is None
    assert outcome.recording_path is None
    assert outcome.latency == CallLatency()


@pytest.mark.parametrize(
    ("status", "final_state", "due_in"),
    [
        (None, None, 600.0),
        ("booked", "farewell", 60.0),
        ("not_interested", "goodbye_not_interested", 60.0),
        ("transferred", "transfer_to_human", 600.0),
    ],
    ids=["in-the-script", "booked-and-hanging-up", "declined", "with-a-person"],
)
def test_the_outcome_is_due_soon_after_an_exit_that_hangs_up(
    status: str | None, final_state: str | None, due_in: float
) -> None:
    s = Session(session_id="call-1", status=status, final_state=final_state)
    due = outcome_due_at(SCRIPT, s, 5000.0, exit_grace_s=60.0, idle_s=600.0)
    assert due == 5000.0 + due_in


def test_a_lost_calls_deadline_must_come_before_its_session_expires() -> None:
    with pytest.raises(ConfigError, match="must be below POLICY_SESSION_TTL_S"):
        PolicySettings.load(session_ttl_s=3600, outcome_idle_s=3600)
    assert PolicySettings.load(session_ttl_s=3600, outcome_idle_s=3599).outcome_idle_s == 3599
