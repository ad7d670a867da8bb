"""A call's dialog session and where it lives: one JSON value per call in Redis.

Plain Redis commands only (the Debian server has no RedisJSON): ``session:{id}`` holds the
session as JSON with an expiry, and ``session:{id}:lock`` serializes the turns of one call, so a
retried utterance and the original never run at the same time. Every turn saves the session
before its reply is complete, which is why an engine restart mid-call loses nothing.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from pydantic import BaseModel, Field
from redis.asyncio import Redis
from redis.exceptions import RedisError

from callkit.errors import DependencyTimeout, DependencyUnavailable

# Compare-and-delete: only the lock's owner may release it.
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
MAX_TRANSCRIPT = 400
MAX_REMEMBERED_EVENTS = 64


class Sentence(BaseModel):
    """One sentence the agent says, with where it came from (for barge-in rollback)."""

    text: str
    cache_key: str | None = None
    state: str | None = None
    source: Literal["say", "reprompt", "phrase", "faq", "answer"] = "say"


class Line(BaseModel):
    role: Literal["caller", "agent"]
    text: str
    at: float
    state: str | None = None
    interrupted: bool = False


class Hold(BaseModel):
    modality: str
    date: str
    time: str
    booked: bool = False


class Session(BaseModel):
    session_id: str
    direction: Literal["inbound", "outbound"] = "inbound"
    caller: str | None = None
    callee: str | None = None
    campaign_id: str | None = None
    locale: str = "en"
    started_at: float = Field(default_factory=time.time)
    ended_at: float | None = None
    hangup_cause: str | None = None

    state: str = ""
    slots: dict[str, Any] = Field(default_factory=dict)
    said: list[str] = Field(default_factory=list)
    asked: dict[str, int] = Field(default_factory=dict)
    silences: int = 0
    offered_times: list[str] = Field(default_factory=list)
    hold: Hold | None = None
    status: str | None = None
    final_state: str | None = None

    transcript: list[Line] = Field(default_factory=list)
    last_reply: list[Sentence] = Field(default_factory=list)
    responses: dict[str, dict[str, Any]] = Field(default_factory=dict)
    outcome_sent: bool = False
    turns: int = 0
    llm_calls: int = 0
    degraded_turns: int = 0
    version: int = 0

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def remember(self, event_key: str, response: dict[str, Any]) -> None:
        """Keep the response of an event so a retry gets the same answer (bounded)."""
        self.responses[event_key] = response
        while len(self.responses) > MAX_REMEMBERED_EVENTS:
            self.responses.pop(next(iter(self.responses)))

    def add_line(self, role: Literal["caller", "agent"], text: str, **extra: Any) -> None:
        self.transcript.append(Line(role=role, text=text, at=time.time(), **extra))
        if len(self.transcript) > MAX_TRANSCRIPT:
            del self.transcript[: len(self.transcript) - MAX_TRANSCRIPT]


class SessionStore:
    def __init__(self, redis: Redis, *, ttl_s: int, lock_timeout_s: float = 30.0) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.lock_timeout_s = lock_timeout_s
        self._unlock = redis.register_script(_UNLOCK)

    @staticmethod
    def key(session_id: str) -> str:
        return f"session:{session_id}"

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
        key = f"{self.key(session_id)}:lock"
        token = secrets.token_hex(8)
        deadline = time.monotonic() + self.lock_timeout_s
        try:
            while not await self.redis.set(key, token, nx=True, px=int(self.lock_timeout_s * 1000)):
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
                await self._unlock(keys=[key], args=[token])
            except (RedisError, OSError):
                pass  # the lock expires by itself
