"""Sessions in Redis: one JSON value per call, plain commands only (no RedisJSON).

``session:{id}`` holds the session as JSON with an expiry, and ``session:{id}:lock`` serializes
the turns of one call. Every turn saves the session before its reply is complete, which is why
an engine restart mid-call loses nothing.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.exceptions import RedisError

from callkit.contracts import streams
from callkit.errors import DependencyTimeout, DependencyUnavailable
from policy_engine.session import Session

# Compare-and-delete: only the lock's owner may release it.
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisSessionStore:
    def __init__(self, redis: Redis, *, ttl_s: int, lock_timeout_s: float = 30.0) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.lock_timeout_s = lock_timeout_s
        self._unlock = redis.register_script(_UNLOCK)

    @staticmethod
    def key(session_id: str) -> str:
        return streams.key(streams.SESSION_PREFIX, session_id)

    async def load(self, session_id: str) -> Session | None:
        try:
            raw = await self.redis.get(self.key(session_id))
        except (RedisError, OSError) as exc:
            raise DependencyUnavailable(f"redis: {type(exc).__name__}") from exc
        return None if raw is None else Session.model_validate_json(raw)

    async def save(self, session: Session) -> None:
        session.version += 1
        try:
            await self.redis.set(
                self.key(session.session_id), session.model_dump_json(), ex=self.ttl_s
            )
        except (RedisError, OSError) as exc:
            raise DependencyUnavailable(f"redis: {type(exc).__name__}") from exc

    async def delete(self, session_id: str) -> bool:
        return bool(await self.redis.delete(self.key(session_id)))

    @asynccontextmanager
    async def locked(self, session_id: str) -> AsyncIterator[None]:
        """Hold the call's turn lock; waits for a turn in progress to finish."""
        lock = streams.key(streams.SESSION_PREFIX, session_id, "lock")
        token = secrets.token_hex(8)
        deadline = time.monotonic() + self.lock_timeout_s
        try:
            while not await self.redis.set(
                lock, token, nx=True, px=int(self.lock_timeout_s * 1000)
            ):
                if time.monotonic() > deadline:
                    raise DependencyTimeout(
                        f"session {session_id!r} is busy with another turn for "
                        f"{self.lock_timeout_s:g}s"
                    )
                await asyncio.sleep(0.01)
        except (RedisError, OSError) as exc:
            raise DependencyUnavailable(f"redis: {type(exc).__name__}") from exc
        try:
            yield
        finally:
            try:
                await self._unlock(keys=[lock], args=[token])
            except (RedisError, OSError):
                pass  # the lock expires by itself
