"""Outcome deadlines in Redis: one sorted set, call ids scored by when their outcome is due.

Claiming is one Lua script: the due ids are read and pushed a lease into the future in the
same step, so of several replicas sweeping at once exactly one gets each call, and a call whose
claimer died becomes due again when the lease runs out.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

from callkit.contracts.streams import CALLS_OUTCOME_DUE
from callkit.errors import DependencyUnavailable

# KEYS[1] the set; ARGV[1] now; ARGV[2] most ids; ARGV[3] when a claimed id is due again.
_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[3], id) end
return due
"""


class RedisOutcomeDeadlines:
    def __init__(self, redis: Redis, *, key: str = CALLS_OUTCOME_DUE, lease_s: float = 120.0):
        self.redis = redis
        self.key = key
        self.lease_s = lease_s
        self._claim = redis.register_script(_CLAIM)

    async def schedule(self, call_id: str, due_at: float) -> None:
        try:
            await self.redis.zadd(self.key, {call_id: due_at})
        except (RedisError, OSError) as exc:
            raise DependencyUnavailable(f"redis: {type(exc).__name__}") from exc

    async def cancel(self, call_id: str) -> None:
        try:
            await self.redis.zrem(self.key, call_id)
        except (RedisError, OSError) as exc:
            raise DependencyUnavailable(f"redis: {type(exc).__name__}") from exc

    async def claim_due(self, now: float, limit: int) -> list[str]:
        try:
            ids = await self._claim(keys=[self.key], args=[now, limit, now + self.lease_s])
        except (RedisError, OSError) as exc:
            raise DependencyUnavailable(f"redis: {type(exc).__name__}") from exc
        return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]
