"""The call's outcome (:mod:`callkit.contracts.outcome`), built from its session.

Status, price and summary come from the slots and the catalogue, never from the model; the
recording path and the latency figures are the bridge's, as it sent them on ``call.ended``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from callkit.contracts.outcome import CallLatency, CallOutcome, Slots, Status, TranscriptLine
from policy_engine.script import Script
from policy_engine.session import Session


def study_label(script: Script, study_id: str | None, locale: str) -> str | None:
    """The study's name for a spreadsheet cell: "MRI of the knee", not "an MRI of the knee"."""
    if not study_id:
        return None
    names = script.catalogue.study(study_id).name
    name = names.get(locale) or names[script.locales[0]]
    for article in ("an ", "a ", "the "):
        if name.startswith(article):
            return name[len(article) :]
    return name


def final_status(session: Session) -> str:
    if session.status:
        return session.status
    if session.hold is not None and session.hold.booked:
        return "booked"
    return "incomplete"


def total_price(script: Script, slots: dict[str, Any]) -> float | None:
    sid = slots.get("study_type")
    if not sid:
        return None
    total = float(script.catalogue.study(sid).price)
    if slots.get("video_conclusion") is True:
        total += script.catalogue.video_conclusion.price
    if slots.get("discount") is True:
        total = round(total * (1 - script.catalogue.discount.percent / 100), 2)
    return total


def summary(script: Script, session: Session, status: str) -> str:
    """One line for the sales staff, built from the slots (no model involved)."""
    s = session.slots
    parts: list[str] = []
    study = study_label(script, s.get("study_type"), "en")
    if status == "booked" and study:
        parts.append(
            f"Booked {study} on {s.get('appointment_date')} at {s.get('appointment_time')}"
        )
    else:
        parts.append(status.replace("_", " ").capitalize())
        if study:
            parts.append(f"discussed {study}")
    if s.get("symptoms"):
        complaint = str(s["symptoms"])
        if s.get("symptoms_duration"):
            complaint += f" for {s['symptoms_duration']}"
        parts.append(f"complaint: {complaint}")
    if status == "voicemail":
        parts.append("no message left" if session.voicemail_silent else "message left")
    if status == "callback" and s.get("callback_at"):
        at = datetime.fromisoformat(str(s["callback_at"])).astimezone(script.schedule.zone)
        parts.append(f"call back from {at:%Y-%m-%d %H:%M} local time")
    if s.get("video_conclusion") is True:
        parts.append("with video conclusion")
    if s.get("contraindications") is True:
        parts.append("has contraindications to check")
    return "; ".join(parts) + "."


def build_outcome(script: Script, session: Session) -> CallOutcome:
    """The outcome the call's session adds up to (the notifier writes the sheet row from it)."""
    s = session.slots
    status = final_status(session)
    started = datetime.fromtimestamp(session.started_at, UTC)
    ended = datetime.fromtimestamp(session.ended_at or session.started_at, UTC)
    extra = {
        k: s.get(k)
        for k in (
            "pain_character",
            "visited_doctor",
            "contraindications",
            "contraindication_notes",
            "discount",
            "callback_at",  # ISO-8601 UTC; the dialer calls back from then on
        )
        if s.get(k) is not None
    }
    return CallOutcome(
        call_id=session.session_id,
        direction=session.direction,
        locale=session.locale,
        campaign_id=session.campaign_id,
        caller=session.caller,
        callee=session.callee,
        started_at=started,
        ended_at=ended,
        duration_s=max(0.0, (session.ended_at or session.started_at) - session.started_at),
        hangup_cause=session.hangup_cause,
        final_state=session.final_state or session.state,
        status=cast(Status, status),
        slots=Slots(
            client_name=s.get("client_name"),
            phone=s.get("phone"),
            age=s.get("age"),
            weight_kg=s.get("weight_kg"),
            symptoms=s.get("symptoms"),
            symptoms_duration=s.get("symptoms_duration"),
            study_type=study_label(script, s.get("study_type"), session.locale),
            appointment_date=s.get("appointment_date") if status == "booked" else None,
            appointment_time=s.get("appointment_time") if status == "booked" else None,
            price=total_price(script, s),
            currency=script.clinic.currency,
            video_conclusion=s.get("video_conclusion"),
            **extra,
        ),
        summary=summary(script, session, status),
        transcript=[
            TranscriptLine(
                role=line.role,
                text=line.text,
                t=max(0.0, round(line.at - session.started_at, 2)),
                interrupted=line.interrupted,
            )
            for line in session.transcript
        ],
        recording_path=session.recording_path,
        latency=session.latency or CallLatency(),
        amd=session.amd,
    )
