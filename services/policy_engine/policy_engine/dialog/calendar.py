"""The appointment calendar the dialog books against, and the schedule's own arithmetic.

What the schedule offers (which days can be booked, the start times of a day, a spread of free
times) is pure and shared by every calendar; which slots are free, held or booked is the
calendar's. A hold keeps a slot for one call while the caller decides; a booking keeps it until
the appointment. Two calls can never both hold or book the same slot.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Literal, Protocol

from policy_engine.script import Schedule

Unbookable = Literal["closed", "out_of_range"]


class Calendar(Protocol):
    """Slots per modality and start time, each free, held by one call, or booked by one call."""

    schedule: Schedule

    async def free(self, modality: str, day: date, now: datetime) -> list[time]:
        """The schedule's start times on ``day`` that no call holds or booked."""

    async def hold(self, modality: str, day: date, at: time, call_id: str) -> bool:
        """Hold the slot for ``call_id`` (True also when the call already holds or booked it)."""

    async def book(self, modality: str, day: date, at: time, call_id: str, now: datetime) -> bool:
        """Book the slot for ``call_id`` unless another call holds or booked it."""

    async def release(self, modality: str, day: date, at: time, call_id: str) -> bool:
        """Free the slot if ``call_id`` holds it; a booking is never released."""

    async def owner(self, modality: str, day: date, at: time) -> str | None:
        """``hold:{call_id}``, ``booked:{call_id}``, or None when the slot is free."""


def bookable(schedule: Schedule, day: date, now: datetime) -> Unbookable | None:
    """None when ``day`` can be booked, else why not."""
    today = now.date()
    if day < today or day > today + timedelta(days=schedule.horizon_days):
        return "out_of_range"
    if schedule.hours(day) is None:
        return "closed"
    return None


def start_times(schedule: Schedule, day: date, now: datetime) -> list[time]:
    """Every start time the schedule has on ``day`` that is at least an hour after ``now``."""
    hours = schedule.hours(day)
    if hours is None:
        return []
    step = timedelta(minutes=schedule.slot_minutes)
    current = datetime.combine(day, hours[0])
    end = datetime.combine(day, hours[1])
    earliest = now.replace(tzinfo=None) + timedelta(hours=1)
    out = []
    while current + step <= end:
        if current >= earliest:
            out.append(current.time())
        current += step
    return out


def spread_offer(schedule: Schedule, free: list[time]) -> list[time]:
    """A few free times spread over the day (morning, midday, evening) rather than the first few."""
    n = schedule.offer_count
    if len(free) <= n:
        return list(free)
    step = (len(free) - 1) / (n - 1) if n > 1 else 0
    return [free[round(i * step)] for i in range(n)]


def booking_kept_s(schedule: Schedule, day: date, at: time, now: datetime) -> int:
    """How long a booking is kept: until a day after the appointment, counted from ``now``.

    ``now`` is the engine's clock, not the store's: a call replayed on a frozen clock (the
    dialogue suite, tests) books as it would have on that day.
    """
    expires = datetime.combine(day + timedelta(days=1), at, tzinfo=schedule.zone)
    return max(int((expires - now).total_seconds()), 60)
