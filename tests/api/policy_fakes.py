"""In-process stores for the policy engine: the session store, calendar, publisher and outcome
deadline protocols kept in memory, with the Redis ones' rules (one turn per call at a time, a
slot held or booked by one call only, a booking never released, holds expiring, a due call
claimed by one sweeper and due again a lease later)."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from datetime import time as clock_time

from callkit.contracts.live import LiveEvent
from callkit.contracts.outcome import CallOutcome
from policy_engine.dialog.calendar import start_times
from policy_engine.script import Schedule
from policy_engine.session import Session


class MemorySessions:
    def __init__(self) -> None:
        self.saved: dict[str, str] = {}
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def load(self, session_id: str) -> Session | None:
        raw = self.saved.get(session_id)
        return None if raw is None else Session.model_validate_json(raw)

    async def save(self, session: Session) -> None:
        session.version += 1
        self.saved[session.session_id] = session.model_dump_json()

    async def delete(self, session_id: str) -> bool:
        return self.saved.pop(session_id, None) is not None

    @asynccontextmanager
    async def locked(self, session_id: str) -> AsyncIterator[None]:
        async with self._locks[session_id]:
            yield


class MemoryCalendar:
    def __init__(self, schedule: Schedule, *, hold_s: int = 900) -> None:
        self.schedule = schedule
        self.hold_s = hold_s
        self._slots: dict[tuple[str, date, clock_time], tuple[str, float]] = {}

    def _value(self, modality: str, day: date, at: clock_time) -> str | None:
        found = self._slots.get((modality, day, at))
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]

    async def free(self, modality: str, day: date, now: datetime) -> list[clock_time]:
        return [
            t for t in start_times(self.schedule, day, now) if self._value(modality, day, t) is None
        ]

    async def hold(self, modality: str, day: date, at: clock_time, call_id: str) -> bool:
        value = self._value(modality, day, at)
        if value in (None, f"hold:{call_id}"):
            self._slots[(modality, day, at)] = (f"hold:{call_id}", time.monotonic() + self.hold_s)
            return True
        return value == f"booked:{call_id}"

    async def book(
        self, modality: str, day: date, at: clock_time, call_id: str, now: datetime
    ) -> bool:
        if self._value(modality, day, at) not in (None, f"hold:{call_id}", f"booked:{call_id}"):
            return False
        self._slots[(modality, day, at)] = (f"booked:{call_id}", float("inf"))
        return True

    async def release(self, modality: str, day: date, at: clock_time, call_id: str) -> bool:
        if self._value(modality, day, at) != f"hold:{call_id}":
            return False
        del self._slots[(modality, day, at)]
        return True

    async def owner(self, modality: str, day: date, at: clock_time) -> str | None:
        return self._value(modality, day, at)


class MemoryPublisher:
    def __init__(self) -> None:
        self.outcomes: list[CallOutcome] = []
        self.events: list[LiveEvent] = []

    async def completed(self, outcome: CallOutcome) -> None:
        self.outcomes.append(outcome)

    async def live(self, events: list[LiveEvent]) -> None:
        self.events.extend(events)


class MemoryDeadlines:
    def __init__(self, *, lease_s: float = 120.0) -> None:
        self.lease_s = lease_s
        self.due: dict[str, float] = {}

    async def schedule(self, call_id: str, due_at: float) -> None:
        self.due[call_id] = due_at

    async def cancel(self, call_id: str) -> None:
        self.due.pop(call_id, None)

    async def claim_due(self, now: float, limit: int) -> list[str]:
        ids = sorted((at, i) for i, at in self.due.items() if at <= now)[:limit]
        for _, call_id in ids:
            self.due[call_id] = now + self.lease_s
        return [call_id for _, call_id in ids]
