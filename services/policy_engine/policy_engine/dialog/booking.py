"""Dates, times and the appointment: validating them on the calendar, holding and booking.

A date the caller names is checked against the schedule; a time must be one the schedule has
that day and is held for the call the moment it is taken, so the confirmation that follows
cannot be beaten by another call. The booking itself happens at the script's booked exit.
"""

from __future__ import annotations

from datetime import date, time

from policy_engine import render
from policy_engine.dialog.calendar import bookable, spread_offer, start_times
from policy_engine.dialog.context import Turn
from policy_engine.session import Hold, Session


def clear_date(session: Session) -> None:
    """Forget the date and everything that depends on it (time, confirmation, offer)."""
    for key in ("appointment_date", "appointment_time", "time_confirmed"):
        session.slots.pop(key, None)
    session.offered_times = []


def clear_time(session: Session) -> None:
    session.slots.pop("appointment_time", None)
    session.slots.pop("time_confirmed", None)


def modality(t: Turn) -> str:
    study = t.study() or t.script.catalogue.study(t.script.catalogue.default_study)
    return str(study.modality)


async def take_date(t: Turn, day: date) -> None:
    s = t.session
    why = bookable(t.script.schedule, day, t.now)
    if why is not None:
        spoken = render.spoken_date(day, t.locale, t.today)
        await t.phrase("date_closed" if why == "closed" else "date_out_of_range", date=spoken)
        return
    if s.slots.get("appointment_date") != day.isoformat():
        await release_hold(t)
        clear_time(s)
        s.offered_times = []
    s.slots["appointment_date"] = day.isoformat()


async def take_time(t: Turn, at: time) -> None:
    """Hold ``at`` on the chosen date for this call, or say why it cannot be had."""
    s = t.session
    day = date.fromisoformat(s.slots["appointment_date"])
    kind = modality(t)
    hhmm = f"{at:%H:%M}"
    if at not in start_times(t.script.schedule, day, t.now):
        await t.phrase("time_not_offered")
        return
    if s.hold and s.hold.date == day.isoformat() and s.hold.time == hhmm:
        s.slots["appointment_time"] = hhmm
        return
    if not await t.deps.calendar.hold(kind, day, at, s.session_id):
        await t.phrase("time_taken")
        s.offered_times = []
        return
    await release_hold(t)
    s.hold = Hold(modality=kind, date=day.isoformat(), time=hhmm)
    if s.slots.get("appointment_time") != hhmm:
        s.slots.pop("time_confirmed", None)
    s.slots["appointment_time"] = hhmm


async def release_hold(t: Turn) -> None:
    """Give back the call's held slot; a booked one stays the call's."""
    s = t.session
    if s.hold is not None and not s.hold.booked:
        await t.deps.calendar.release(
            s.hold.modality,
            date.fromisoformat(s.hold.date),
            time.fromisoformat(s.hold.time),
            s.session_id,
        )
    if s.hold is None or not s.hold.booked:
        s.hold = None


async def prepare_offer(t: Turn) -> bool:
    """Free times for the chosen date to offer; False (the date cleared) when the day is full."""
    s = t.session
    day = date.fromisoformat(s.slots["appointment_date"])
    free = await t.deps.calendar.free(modality(t), day, t.now)
    if s.offered_times and all(time.fromisoformat(x) in free for x in s.offered_times):
        return True
    offer = spread_offer(t.script.schedule, free)
    if not offer:
        await t.phrase("day_full", date=render.spoken_date(day, t.locale, t.today))
        clear_date(s)
        return False
    s.offered_times = [f"{x:%H:%M}" for x in offer]
    return True


async def book(t: Turn) -> bool:
    """Book the held slot when it is the one the caller confirmed."""
    s = t.session
    hold = s.hold
    if (
        hold is None
        or hold.date != s.slots.get("appointment_date")
        or hold.time != s.slots.get("appointment_time")
    ):
        return False
    if hold.booked:
        return True
    hold.booked = await t.deps.calendar.book(
        hold.modality,
        date.fromisoformat(hold.date),
        time.fromisoformat(hold.time),
        s.session_id,
        t.now,
    )
    return hold.booked
