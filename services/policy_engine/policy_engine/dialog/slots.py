"""Applying what the caller said to the call: slots, corrections, discounts, date and time."""

from __future__ import annotations

from policy_engine.dialog.booking import clear_date, clear_time, take_date, take_time
from policy_engine.dialog.context import Turn
from policy_engine.script import CORRECTION
from policy_engine.session import Session
from policy_engine.understand import Heard


def clear_slot(session: Session, slot: str) -> None:
    """Forget a slot and the ones that depend on it (a date takes its time with it)."""
    if slot == "appointment_date":
        clear_date(session)
    elif slot == "appointment_time":
        clear_time(session)
    else:
        session.slots.pop(slot, None)


async def apply_heard(t: Turn, heard: Heard) -> None:
    """Merge the utterance's slots into the call, validating dates and times on the calendar."""
    s = t.session
    slots = dict(heard.slots)
    for slot in heard.change:
        if slot not in slots:
            clear_slot(s, slot)
    if heard.change or s.state == CORRECTION:
        slots["correction"] = heard.text[:200]
    others = {k for k in slots if k not in ("appointment_confirmed", "correction")}
    if slots.get("appointment_confirmed") is False and (others or heard.date or heard.time):
        del slots["appointment_confirmed"]  # a correction, not a refusal: confirm again
    for key, value in slots.items():
        s.slots[key] = value
    if slots.get("contraindications") is True:
        s.slots["contraindication_notes"] = heard.text[:200]
        await t.phrase("contraindication_noted")
    auto_age = t.script.catalogue.discount.automatic_from_age
    age = s.slots.get("age")
    if (
        s.slots.get("discount") is None
        and auto_age is not None
        and isinstance(age, int)
        and age >= auto_age
    ):
        s.slots["discount"] = True
        slots["discount"] = True
    if slots.get("discount") is True:
        await t.phrase("discount_applied")
    if heard.date is not None:
        await take_date(t, heard.date)
    if heard.time is not None and s.slots.get("appointment_date"):
        await take_time(t, heard.time)
