"""The appointment calendar in Redis.

One key per modality and slot, ``{prefix}:{modality}:{date}:{HH:MM}``, holds ``hold:{call_id}``
(with a short expiry while the caller decides) or ``booked:{call_id}`` (kept until a day after
the appointment). Holding and booking are single Lua scripts, so two concurrent calls can never
both get the same slot.
"""

from __future__ import annotations

from datetime import date, datetime, time

from redis.asyncio import Redis

from callkit.contracts import streams
from policy_engine.dialog.calendar import booking_kept_s, start_times
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


class RedisCalendar:
    def __init__(
        self,
        redis: Redis,
        schedule: Schedule,
        *,
        hold_s: int = 900,
        prefix: str = streams.APPOINTMENT_PREFIX,
    ) -> None:
        self.redis = redis
        self.schedule = schedule
        self.hold_s = hold_s
        self.prefix = prefix
        self._hold = redis.register_script(_HOLD)
        self._book = redis.register_script(_BOOK)
        self._release = redis.register_script(_RELEASE)

    def key(self, modality: str, day: date, at: time) -> str:
        return streams.key(self.prefix, modality, day.isoformat(), f"{at:%H:%M}")

    async def free(self, modality: str, day: date, now: datetime) -> list[time]:
        candidates = start_times(self.schedule, day, now)
        if not candidates:
            return []
        values = await self.redis.mget([self.key(modality, day, t) for t in candidates])
        return [t for t, v in zip(candidates, values, strict=True) if v is None]

    async def hold(self, modality: str, day: date, at: time, call_id: str) -> bool:
        return bool(
            await self._hold(keys=[self.key(modality, day, at)], args=[call_id, self.hold_s])
        )

    async def book(self, modality: str, day: date, at: time, call_id: str, now: datetime) -> bool:
        keep_s = booking_kept_s(self.schedule, day, at, now)
        return bool(await self._book(keys=[self.key(modality, day, at)], args=[call_id, keep_s]))

    async def release(self, modality: str, day: date, at: time, call_id: str) -> bool:
        return bool(await self._release(keys=[self.key(modality, day, at)], args=[call_id]))

    async def owner(self, modality: str, day: date, at: time) -> str | None:
        value = await self.redis.get(self.key(modality, day, at))
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)
