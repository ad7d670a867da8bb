"""Appointment slots: what the schedule offers, and holding and booking them in Redis.

One key per modality and slot, ``appt:{modality}:{date}:{HH:MM}``, holds ``hold:{call_id}``
(with a short expiry while the caller decides) or ``booked:{call_id}`` (kept until a day after
the appointment). Holding and booking are single Lua scripts, so two concurrent calls can never
both get the same slot.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from redis.asyncio import Redis

from policy_engine.script import Schedule

# KEYS[1] slot; ARGV[1] call id; ARGV[2] hold seconds. 1 when this call now holds the slot.
_HOLD = """
local v = redis.call('GET', KEYS[1])
if v == false or v == 'hold:' .. ARGV[1] then
  redis.call('SET', KEYS[1], 'hold:' .. ARGV[1], 'EX', ARGV[2])
  return 1
end
if v == 'booked:' .. ARGV[1] then return 1 end
return 0
"""
# KEYS[1] slot; ARGV[1] call id; ARGV[2] seconds the booking is kept. 1 when booked.
_BOOK = """
local v = redis.call('GET', KEYS[1])
if v == false or v == 'hold:' .. ARGV[1] or v == 'booked:' .. ARGV[1] then
  redis.call('SET', KEYS[1], 'booked:' .. ARGV[1], 'EX', ARGV[2])
  return 1
end
return 0
"""
# KEYS[1] slot; ARGV[1] call id. Frees a hold (never a booking) this call owns.
_RELEASE = """
if redis.call('GET', KEYS[1]) == 'hold:' .. ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Calendar:
    def __init__(
        self, redis: Redis, schedule: Schedule, *, hold_s: int = 900, prefix: str = "appt"
    ) -> None:
        self.redis = redis
        self.schedule = schedule
        self.hold_s = hold_s
        self.prefix = prefix
        self._hold = redis.register_script(_HOLD)
        self._book = redis.register_script(_BOOK)
        self._release = redis.register_script(_RELEASE)

    def key(self, modality: str, day: date, at: time) -> str:
        return f"{self.prefix}:{modality}:{day.isoformat()}:{at:%H:%M}"

    def bookable(self, day: date, now: datetime) -> str | None:
        """None when ``day`` can be booked, else why not: "closed" or "out_of_range"."""
        today = now.date()
        if day < today or day > today + timedelta(days=self.schedule.horizon_days):
            return "out_of_range"
        if self.schedule.hours(day) is None:
            return "closed"
        return None

    def slots(self, day: date, now: datetime) -> list[time]:
        """Every start time the schedule has on ``day`` that is still in the future."""
        hours = self.schedule.hours(day)
        if hours is None:
            return []
        step = timedelta(minutes=self.schedule.slot_minutes)
        current = datetime.combine(day, hours[0])
        end = datetime.combine(day, hours[1])
        earliest = now.replace(tzinfo=None) + timedelta(hours=1)
        out = []
        while current + step <= end:
            if current >= earliest:
                out.append(current.time())
            current += step
        return out

    async def free(self, modality: str, day: date, now: datetime) -> list[time]:
        candidates = self.slots(day, now)
        if not candidates:
            return []
        values = await self.redis.mget([self.key(modality, day, t) for t in candidates])
        return [t for t, v in zip(candidates, values, strict=True) if v is None]

    def offer(self, free: list[time]) -> list[time]:
        """A few free times spread over the day (morning, midday, evening) rather than the first few."""
        n = self.schedule.offer_count
        if len(free) <= n:
            return list(free)
        step = (len(free) - 1) / (n - 1) if n > 1 else 0
        return [free[round(i * step)] for i in range(n)]

    async def hold(self, modality: str, day: date, at: time, call_id: str) -> bool:
        return bool(
            await self._hold(keys=[self.key(modality, day, at)], args=[call_id, self.hold_s])
        )

    async def book(
        self, modality: str, day: date, at: time, call_id: str, now: datetime
    ) -> bool:
        """Book the slot for ``call_id``, kept until a day after the appointment.

        The expiry is relative to ``now``, the engine's clock, not Redis's: a call replayed on a
        frozen clock (the dialogue suite, tests) books as it would have on that day.
        """
        expires = datetime.combine(day + timedelta(days=1), at, tzinfo=self.schedule.zone)
        keep_s = max(int((expires - now).total_seconds()), 60)
        return bool(await self._book(keys=[self.key(modality, day, at)], args=[call_id, keep_s]))

    async def release(self, modality: str, day: date, at: time, call_id: str) -> bool:
        return bool(await self._release(keys=[self.key(modality, day, at)], args=[call_id]))

    async def owner(self, modality: str, day: date, at: time) -> str | None:
        value = await self.redis.get(self.key(modality, day, at))
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)
