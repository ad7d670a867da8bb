"""What is live about a campaign, in Redis: call slots, one call per number, rate buckets.

Durable facts (contacts, attempts, the do-not-call list) are the database's; these keys only say
what is happening now, and every one of them expires, so a replica killed mid-call leaks
nothing for longer than a call can last:

- ``campaign:{id}:slots``: a sorted set of attempt ids scored by when the slot lapses. A slot is
  reserved (atomically, against the campaign's cap) before ``originate`` and freed when the
  attempt ends; a lapsed one is dropped on the next reservation.
- ``campaign:number:{e164}``: the attempt that holds the number (``SET NX`` with a TTL of the
  longest call): one call per person at a time, across campaigns and replicas.
- ``campaign:rate:{trunk}``: the next instant an originate may go out on the trunk (a GCRA
  bucket shared by every replica).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from callkit.contracts.streams import CAMPAIGN_PREFIX, key

_RESERVE = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(ARGV[4]) - now) * 1000) + 1000)
return 1
"""

# GCRA: the bucket's state is its theoretical arrival time (TAT). A call may go when the TAT is
# no further ahead than the burst allows; otherwise the reply is how long to wait.
_RATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allowed_at = tat - interval * (burst - 1)
if allowed_at > now then return tostring(allowed_at - now) end
redis.call('SET', KEYS[1], tostring(tat + interval), 'PX', math.ceil((tat + interval - now) * 1000) + 1000)
return '0'
"""

_RELEASE_NUMBER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def slots_key(campaign_id: str) -> str:
    return key(CAMPAIGN_PREFIX, campaign_id, "slots")


def number_key(phone: str) -> str:
    return key(CAMPAIGN_PREFIX, "number", phone)


def rate_key(trunk: str) -> str:
    return key(CAMPAIGN_PREFIX, "rate", trunk)


class LiveState:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._reserve: Any = redis.register_script(_RESERVE)
        self._rate: Any = redis.register_script(_RATE)
        self._release_number: Any = redis.register_script(_RELEASE_NUMBER)

    async def reserve_slot(
        self, campaign_id: str, attempt_id: str, *, cap: int, now: float, hold_s: float
    ) -> bool:
        """Take one of the campaign's ``cap`` slots for the attempt until ``now + hold_s``."""
        got = await self._reserve(
            keys=[slots_key(campaign_id)], args=[now, cap, attempt_id, now + hold_s]
        )
        return bool(int(got))

    async def extend_slot(self, campaign_id: str, attempt_id: str, *, until: float) -> None:
        await self.redis.zadd(slots_key(campaign_id), {attempt_id: until}, xx=True)

    async def release_slot(self, campaign_id: str, attempt_id: str) -> None:
        await self.redis.zrem(slots_key(campaign_id), attempt_id)

    async def active(self, campaign_id: str, *, now: float) -> int:
        """Slots held now (lapsed ones are not counted)."""
        return int(await self.redis.zcount(slots_key(campaign_id), f"({now}", "+inf"))

    async def hold_number(self, phone: str, attempt_id: str, *, ttl_s: float) -> bool:
        """One call per number: False if another attempt (any campaign) holds it."""
        held = await self.redis.set(number_key(phone), attempt_id, nx=True, px=int(ttl_s * 1000))
        if held:
            return True
        return bool(await self.redis.get(number_key(phone)) == attempt_id.encode())

    async def release_number(self, phone: str, attempt_id: str) -> None:
        """Frees the number only if this attempt still holds it."""
        await self._release_number(keys=[number_key(phone)], args=[attempt_id])

    async def rate_wait(self, trunk: str, *, calls_per_second: float, burst: int = 1) -> float:
        """0 when an originate may go out on the trunk now (and counts it), else seconds to wait."""
        wait = await self._rate(keys=[rate_key(trunk)], args=[1.0 / calls_per_second, burst])
        return float(wait)
