"""How fast and how many calls a campaign places: a token bucket per trunk and progressive pacing.

Progressive, not predictive: every call is placed only into a free slot of the AI agents'
concurrency, so an answered call always has an agent and nothing is dropped for want of one;
the campaign's slots are further capped at the places the bridges report free, so a full agent
holds the dialling instead of refusing the calls it answers.
The token bucket keeps originates under the trunk's calls-per-second limit. Both are fed the
monotonic clock in seconds and never read it themselves.
"""

from __future__ import annotations

# Below this, a fraction of a token is float noise from the refill arithmetic, not a deficit.
_EPSILON = 1e-9


class TokenBucket:
    """``rate`` tokens a second, up to ``burst`` saved; a call takes one token.

    It starts full, so the first ``burst`` calls go at once.
    """

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be above 0 tokens a second, got {rate}")
        if burst < 1:
            raise ValueError(f"burst must hold at least one token, got {burst}")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._at: float | None = None

    def take(self, now_s: float) -> bool:
        """Take a token if one is there at ``now_s``; False: wait ``wait_s(now_s)`` first."""
        self._refill(now_s)
        if self._tokens + _EPSILON < 1:
            return False
        self._tokens = max(0.0, self._tokens - 1)
        return True

    def wait_s(self, now_s: float) -> float:
        """Seconds from ``now_s`` until a token is there (0: one is there now)."""
        self._refill(now_s)
        missing = 1 - self._tokens
        return 0.0 if missing <= _EPSILON else missing / self.rate

    def _refill(self, now_s: float) -> None:
        # A clock read out of order by a caller never takes tokens away.
        if self._at is not None and now_s > self._at:
            self._tokens = min(self.burst, self._tokens + (now_s - self._at) * self.rate)
        if self._at is None or now_s > self._at:
            self._at = now_s


def dial_budget(*, concurrency: int, active: int, due: int) -> int:
    """How many due contacts to claim now: one per free slot, never more than are due."""
    return max(0, min(concurrency - active, due))


def agent_capacity_budget(loads: list[tuple[int, int]], budget: int, *, pending: int = 0) -> int:
    """``budget`` capped at the agent's free places: the dialer holds while the bridges are full.

    ``loads`` is each bridge's ``(active, max)`` calls, as it reports them in Redis
    (``bridge:{replica}:load``); ``pending`` the calls this dialer has placed that are not yet
    answered, which no bridge counts yet but each will need a place. No bridge reporting at all
    leaves ``budget`` as it is, so a dialer whose bridge does not report keeps dialling. A bridge
    over its limit (one that is stopping reports a limit of 0) frees nothing elsewhere.
    """
    if not loads:
        return max(0, budget)
    free = sum(max(0, limit - active) for active, limit in loads) - max(0, pending)
    return max(0, min(budget, free))
