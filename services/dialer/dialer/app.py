"""Composition root of the dialer: the database, Redis, the Event Socket, the loop and the API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from prometheus_client import Counter, Gauge, Histogram

from callkit.errors import DependencyUnavailable
from callkit.http import create_service_app
from callkit.lifecycle import RedisFactory, redis_lifespan, redis_ready
from dialer.api import install_routes
from dialer.engine import Dialer, EngineConfig, Switch, utcnow
from dialer.settings import DialerSettings
from dialer.store import Store

#: Channel events the dialer follows (answers and hang-ups of its own calls).
EVENTS = "CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB"


def engine_config(settings: DialerSettings) -> EngineConfig:
    return EngineConfig(
        replica=settings.replica,
        dialplan_target=settings.dialplan_target,
        tick_s=settings.tick_s,
        lease_s=settings.lease_s,
        max_call_s=settings.max_call_s,
        outcome_wait_s=settings.outcome_wait_s,
        completed_stream=settings.completed_stream,
        group=settings.group,
        default_region=settings.default_region,
        callback_locale=settings.callback_locale,
        callback_timezone=settings.callback_timezone,
    )


def create_app(
    settings: DialerSettings,
    *,
    connect_redis: RedisFactory | None = None,
    store: Store | None = None,
    switch: Switch | None = None,
    clock: Callable[[], datetime] = utcnow,
    run_loop: bool = True,
) -> FastAPI:
    """``store`` and ``switch`` default to the database and Event Socket the settings name."""
    redis = redis_lifespan(settings.redis_url, *([connect_redis] if connect_redis else []))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with redis(app):
            app.state.store = store or await Store.open(settings.database_url)
            await app.state.store.migrate()
            esl: Any = switch
            owned_esl = None
            holder: dict[str, Dialer] = {}
            if esl is None:
                from callkit.esl_client import EslClient

                owned_esl = EslClient(
                    settings.esl_host,
                    settings.esl_port,
                    settings.esl_password.get_secret_value(),
                    events=EVENTS,
                    password_setting="DIALER_ESL_PASSWORD",
                    on_event=lambda event: holder["dialer"].on_event(event),
                )
                owned_esl.start()
                esl = owned_esl
            dialer = Dialer(
                engine_config(settings), app.state.store, app.state.redis, esl, clock=clock
            )
            holder["dialer"] = dialer
            app.state.dialer = dialer
            app.state.switch = esl
            bind_metrics(dialer)
            task = asyncio.create_task(dialer.run(), name="dialer") if run_loop else None
            try:
                yield
            finally:
                dialer.stop()
                if task is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(task, settings.tick_s + 5)
                await dialer.drain(2.0)
                if owned_esl is not None:
                    await owned_esl.close()
                if store is None:
                    await app.state.store.close()

    app = create_service_app(settings.service_name, lifespan=lifespan)
    app.state.settings = settings
    app.state.clock = clock
    app.state.settings_region = settings.default_region
    app.state.readiness["redis"] = redis_ready(app)
    bind_metrics = _metrics(app)

    async def database() -> None:
        await app.state.store.ping()

    async def event_socket() -> None:
        if not app.state.switch.connected.is_set():
            raise DependencyUnavailable("FreeSWITCH event socket is not connected")

    app.state.readiness["database"] = database
    app.state.readiness["event_socket"] = event_socket
    install_routes(app, settings.api_token.get_secret_value())
    return app


def _metrics(app: FastAPI) -> Callable[[Dialer], None]:
    """The dialer's metrics, registered once per app; the returned function binds them to the
    Dialer a lifespan builds (an app may be started more than once, as tests do)."""
    registry = app.state.metrics.registry
    originates = Counter(
        "dialer_originates_total", "Originates sent to the switch.", registry=registry
    )
    in_flight = Gauge("dialer_calls_in_flight", "This replica's calls now.", registry=registry)
    # The dialer's own share of an originate: dial-time checks, slot and lock, up to the send.
    prepare_seconds = Histogram(
        "dialer_originate_prepare_seconds",
        "The dialer's own time per originate: dial-time checks, call slot and number lock.",
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        registry=registry,
    )

    def bind(dialer: Dialer) -> None:
        in_flight.set_function(lambda: len(dialer.in_flight))
        dialer.metrics = originates
        dialer.prepare_seconds = prepare_seconds

    return bind
