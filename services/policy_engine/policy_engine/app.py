"""Composition root of the policy engine: the script, the engine's parts and the HTTP API.

``create_app`` takes every dependency the engine talks to as a keyword-only argument: the
session store, the calendar, the outcome publisher, the outcome deadlines (all four in Redis
by default), the LLM client (built from the settings by default) and the clock. Given all four
stores, the app opens no Redis at all; tests run it in process on in-memory ones. The dialer's
campaign call context is read from the same Redis (given none and no Redis, outbound calls get
the generic opening). While the app
runs, a sweeper writes the outcome of calls whose ``call.ended`` never came.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from prometheus_client import Gauge
from redis.asyncio import Redis

from callkit import redis_client
from callkit.errors import AgentError, DependencyUnavailable, InvalidInput
from callkit.http import Lifespan, create_service_app
from callkit.lifecycle import redis_ready
from callkit.llm_client import LlmClient, LlmMetrics
from policy_engine.api import router
from policy_engine.deadlines import OutcomeDeadlines
from policy_engine.dialog.calendar import Calendar
from policy_engine.engine import Clock, DialogEngine
from policy_engine.metrics import PolicyMetrics
from policy_engine.outbound import CampaignCalls
from policy_engine.publishing import Publisher, RedisPublisher
from policy_engine.script import Script, load_script
from policy_engine.session import SessionStore
from policy_engine.settings import PolicySettings
from policy_engine.stores.calendar import RedisCalendar
from policy_engine.stores.campaigns import RedisCampaignCalls
from policy_engine.stores.deadlines import RedisOutcomeDeadlines
from policy_engine.stores.sessions import RedisSessionStore

log = logging.getLogger("policy_engine")
WARM_UP_RETRY_S = 5.0
LLM_PROBE_S = 10.0


def create_app(
    settings: PolicySettings,
    *,
    redis: Redis | None = None,
    sessions: SessionStore | None = None,
    calendar: Calendar | None = None,
    publisher: Publisher | None = None,
    deadlines: OutcomeDeadlines | None = None,
    llm: LlmClient | None = None,
    clock: Clock | None = None,
    campaigns: CampaignCalls | None = None,
) -> FastAPI:
    """The policy engine's app. ``redis`` (default: a client for ``settings.redis_url``) backs
    whichever of the stores is not given; a client passed in is not closed by the app."""
    script = load_script(settings.script_dir)  # refuses a broken script, naming the state
    if settings.locale is not None and settings.locale not in script.locales:
        raise InvalidInput(
            f"POLICY_LOCALE={settings.locale!r} is not in the script ({', '.join(script.locales)})"
        )
    system_prompt = _system_prompt(settings)
    uses_redis = any(part is None for part in (sessions, calendar, publisher, deadlines))
    app = create_service_app(
        settings.service_name,
        lifespan=_lifespan(
            settings,
            script,
            system_prompt,
            _Parts(
                redis, sessions, calendar, publisher, deadlines, llm, clock, uses_redis, campaigns
            ),
        ),
    )
    app.state.settings = settings
    if uses_redis:
        app.state.readiness["redis"] = redis_ready(app)
    app.state.policy_metrics = PolicyMetrics(app.state.metrics.registry)
    app.state.llm_up = Gauge(
        "policy_llm_up",
        "1 while the LLM answers; 0 means turns run on the deterministic parsers alone.",
        registry=app.state.metrics.registry,
    )
    if (settings.llm_enabled or llm is not None) and settings.require_llm:

        async def llm_ready() -> None:
            served = await app.state.llm.served_models()
            if settings.llm_model not in served:
                raise DependencyUnavailable(
                    f"LLM serves {sorted(served)}, not {settings.llm_model!r} (POLICY_LLM_MODEL)"
                )

        app.state.readiness["llm"] = llm_ready
    app.include_router(router)
    return app


class _Parts:
    """What the caller of ``create_app`` passed in (None: build the real one)."""

    def __init__(
        self,
        redis: Redis | None,
        sessions: SessionStore | None,
        calendar: Calendar | None,
        publisher: Publisher | None,
        deadlines: OutcomeDeadlines | None,
        llm: LlmClient | None,
        clock: Clock | None,
        uses_redis: bool,
        campaigns: CampaignCalls | None,
    ) -> None:
        self.redis, self.sessions, self.calendar = redis, sessions, calendar
        self.campaigns = campaigns
        self.deadlines = deadlines
        self.publisher, self.llm, self.clock, self.uses_redis = publisher, llm, clock, uses_redis


def _system_prompt(settings: PolicySettings) -> str:
    path = settings.system_prompt_file
    if not path.is_file():
        raise InvalidInput(f"system prompt file {path} does not exist (POLICY_SYSTEM_PROMPT_FILE)")
    return path.read_text(encoding="utf-8").strip()


def _lifespan(
    settings: PolicySettings, script: Script, system_prompt: str, parts: _Parts
) -> Lifespan:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            # 1. Redis, when a store lives there: ours is closed on shutdown, a given one not.
            redis = parts.redis
            if parts.uses_redis and redis is None:
                redis = redis_client.connect(settings.redis_url)
                stack.push_async_callback(redis.aclose)
            app.state.redis = redis
            # 2. The LLM client, unless the turns run on the parsers alone.
            llm = parts.llm
            if llm is None and settings.llm_enabled:
                llm = LlmClient(
                    settings.llm_base_url,
                    settings.llm_model,
                    first_token_timeout_s=settings.llm_timeout_s,
                    total_timeout_s=max(30.0, settings.llm_timeout_s * 2),
                    retries=1,
                    metrics=LlmMetrics(app.state.metrics.registry),
                )
                stack.push_async_callback(llm.aclose)
            app.state.llm = llm
            # 3. The engine on its stores.
            app.state.engine = DialogEngine(
                script,
                sessions=parts.sessions
                or RedisSessionStore(_r(redis), ttl_s=settings.session_ttl_s),
                calendar=parts.calendar
                or RedisCalendar(_r(redis), script.schedule, prefix=settings.calendar_namespace),
                publisher=parts.publisher or RedisPublisher(_r(redis)),
                llm=llm,
                system_prompt=system_prompt,
                max_text_chars=settings.max_text_chars,
                max_silences=settings.max_silences,
                llm_deadline_s=settings.llm_deadline_s,
                ack_after_s=settings.ack_after_s,
                default_locale=settings.locale or script.default_locale,
                clock=parts.clock,
                metrics=app.state.policy_metrics,
                deadlines=parts.deadlines or RedisOutcomeDeadlines(_r(redis)),
                outcome_exit_grace_s=settings.outcome_exit_grace_s,
                outcome_idle_s=settings.outcome_idle_s,
                campaigns=parts.campaigns
                or (RedisCampaignCalls(redis) if redis is not None else None),
            )
            log.info(
                "script loaded",
                extra={"states": len(script.states), "locales": list(script.locales)},
            )
            # 4. Keep the LLM warm and its gauge current while the app runs.
            if llm is not None:
                task = asyncio.create_task(_watch_llm(app, llm, system_prompt))
                stack.push_async_callback(_cancel, task)
            # 5. Write the outcome of calls whose call.ended never came.
            sweeper = asyncio.create_task(
                _sweep_lost_calls(app.state.engine, settings.outcome_sweep_interval_s)
            )
            stack.push_async_callback(_cancel, sweeper)
            yield

    return lifespan


def _r(redis: Redis | None) -> Redis:
    assert redis is not None, "a Redis client exists whenever a store is not given"
    return redis


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _sweep_lost_calls(engine: DialogEngine, interval_s: float) -> None:
    """Every replica sweeps; the deadlines' claim gives each lost call to one of them."""
    while True:
        try:
            await engine.sweep()
        except Exception:  # the sweeper outlives any one failure, e.g. Redis away for a while
            log.exception("sweeping lost calls failed")
        await asyncio.sleep(interval_s)


async def _watch_llm(app: FastAPI, llm: LlmClient, system_prompt: str) -> None:
    """Warm the LLM's prefix cache once it answers, then keep policy_llm_up current."""
    warmed = False
    while True:
        try:
            if not warmed:
                seconds = await llm.warm_up(system_prompt)
                warmed = True
                log.info("LLM warm-up done", extra={"seconds": round(seconds, 3)})
            else:
                await llm.served_models()
            app.state.llm_up.set(1)
        except AgentError as exc:
            app.state.llm_up.set(0)
            log.info(
                "LLM not reachable; the script runs on its parsers", extra={"reason": exc.message}
            )
        await asyncio.sleep(LLM_PROBE_S if warmed else WARM_UP_RETRY_S)
