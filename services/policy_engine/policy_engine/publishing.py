"""What the engine tells the rest of the stack: the call's outcome and its live events.

The outcome is appended to ``calls:completed`` once per call (the notifier writes the sheet
from it); state changes and turn latency go to the bounded ``calls:events`` for dashboards,
best effort: a dashboard that cannot be told never fails a call.
"""

from __future__ import annotations

import logging
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from callkit.contracts import live
from callkit.contracts import outcome as outcomes
from callkit.contracts.live import LiveEvent, StateChanged, TurnTimed
from callkit.contracts.outcome import CallOutcome
from callkit.contracts.streams import CALLS_COMPLETED
from policy_engine.dialog.context import Turn
from policy_engine.session import Session

log = logging.getLogger("policy_engine.publishing")


class Publisher(Protocol):
    async def completed(self, outcome: CallOutcome) -> None:
        """Append a finished call's outcome (raises when it could not be stored)."""

    async def live(self, events: list[LiveEvent]) -> None:
        """Publish live call events; never raises for a store that is away."""


def live_events(session: Session, turn: Turn, seconds: float) -> list[LiveEvent]:
    """The turn's state changes, then the turn itself with its latency."""
    events: list[LiveEvent] = [
        StateChanged(call_id=session.session_id, from_state=before, to_state=after)
        for before, after in turn.transitions
    ]
    events.append(
        TurnTimed(
            call_id=session.session_id,
            state=session.state,
            ms=round(seconds * 1000, 1),
            llm_calls=turn.llm_calls,
        )
    )
    return events


class RedisPublisher:
    def __init__(self, redis: Redis, completed_stream: str = CALLS_COMPLETED) -> None:
        """``completed_stream``: where outcomes go; a dialogue suite keeps its own, so a
        running stack's notifier never writes the suite's calls to the sheet."""
        self.redis = redis
        self.completed_stream = completed_stream

    async def completed(self, outcome: CallOutcome) -> None:
        await self.redis.xadd(self.completed_stream, outcomes.entry(outcome))  # type: ignore[arg-type]

    async def live(self, events: list[LiveEvent]) -> None:
        try:
            await live.publish(self.redis, *events)
        except (RedisError, OSError) as exc:
            log.warning("could not publish call events", extra={"error": type(exc).__name__})
