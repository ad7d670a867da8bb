"""What the engine tells the rest of the stack: the call's outcome and its live events.

The outcome is appended to ``calls:completed`` once per call (the notifier writes the sheet
from it); state changes and turn latency go to the bounded ``calls:events`` for dashboards,
best effort: a dashboard that cannot be told never fails a call.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from policy_engine.dialog.context import Turn
from policy_engine.session import Session

log = logging.getLogger("policy_engine.publishing")
COMPLETED_STREAM = "calls:completed"
EVENTS_STREAM = "calls:events"
EVENTS_MAXLEN = 10_000


class Publisher(Protocol):
    async def completed(self, outcome: dict[str, Any]) -> None:
        """Append a finished call's outcome (raises when it could not be stored)."""

    async def live(self, events: list[dict[str, str]]) -> None:
        """Publish live call events; never raises for a store that is away."""


def live_events(session: Session, turn: Turn, seconds: float) -> list[dict[str, str]]:
    """The turn's state changes, then the turn itself with its latency."""
    events = [
        {"call_id": session.session_id, "type": "state", "from": before, "to": after}
        for before, after in turn.transitions
    ]
    events.append(
        {
            "call_id": session.session_id,
            "type": "turn",
            "state": session.state,
            "ms": f"{seconds * 1000:.1f}",
            "llm_calls": str(turn.llm_calls),
        }
    )
    return events


class RedisPublisher:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def completed(self, outcome: dict[str, Any]) -> None:
        await self.redis.xadd(
            COMPLETED_STREAM, {"outcome": json.dumps(outcome, ensure_ascii=False)}
        )

    async def live(self, events: list[dict[str, str]]) -> None:
        try:
            for event in events:
                fields: dict[Any, Any] = dict(event)
                await self.redis.xadd(
                    EVENTS_STREAM, fields, maxlen=EVENTS_MAXLEN, approximate=True
                )
        except (RedisError, OSError) as exc:
            log.warning("could not publish call events", extra={"error": type(exc).__name__})
