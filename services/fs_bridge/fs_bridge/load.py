"""The bridge's load in Redis, ``bridge:{replica}:load``, so the dialer holds while it is full.

The value is :class:`~callkit.contracts.load.BridgeLoad`, ``{"active": n, "max": m}``: the calls
in progress and ``BRIDGE_MAX_CALLS``. It is written every second and whenever a call starts or
ends, and expires after 5 s, so a bridge that dies stops counting on its own. A bridge that stops writes ``"max": 0`` (it takes no more
calls) and lets that expire. Redis being away costs the report, never a call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from callkit.contracts.load import BridgeLoad, load_key

__all__ = ["EVERY_S", "TTL_S", "LoadReporter"]

log = logging.getLogger("fs_bridge.load")
EVERY_S = 1.0
TTL_S = 5


class LoadReporter:
    """Writes ``load()`` (active calls, the limit) under the replica's key until stopped."""

    def __init__(
        self,
        redis: Redis,
        replica: str,
        load: Callable[[], tuple[int, int]],
        *,
        every_s: float = EVERY_S,
    ) -> None:
        self.redis = redis
        self.key = load_key(replica)
        self.load = load
        self.every_s = every_s
        self._changed = asyncio.Event()
        self._failing = False

    def changed(self) -> None:
        """A call started or ended: write the load now rather than at the next second."""
        self._changed.set()

    async def run(self) -> None:
        while True:
            self._changed.clear()
            await self._write(*self.load())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self.every_s)

    async def stopped(self) -> None:
        """The bridge is stopping: it has no room for new calls from now on."""
        active, _ = self.load()
        await self._write(active, 0)

    async def _write(self, active: int, max_calls: int) -> None:
        value = BridgeLoad(active=active, max=max_calls).value()
        try:
            await self.redis.set(self.key, value, ex=TTL_S)
        except (RedisError, OSError) as exc:
            if not self._failing:  # once per outage, not every second
                log.warning("could not report the bridge's load", extra={"error": str(exc)[:200]})
            self._failing = True
            return
        self._failing = False
