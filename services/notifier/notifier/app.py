"""Composition root of the notifier: sink, column layout, the stream consumer, health."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from redis.asyncio import Redis

from callkit import redis_client
from callkit.http import create_service_app
from callkit.lifecycle import RedisFactory, redis_lifespan, redis_ready
from notifier.columns import Layout
from notifier.consumer import ConsumerConfig, NotifierMetrics, OutcomeConsumer
from notifier.settings import NotifySettings
from notifier.sinks import CsvSink, Sink


def build_sink(settings: NotifySettings) -> Sink:
    if settings.sink == "sheets":
        from notifier.sinks.sheets import SheetsSink

        assert settings.google_credentials_file is not None
        assert settings.spreadsheet_id is not None
        return SheetsSink(
            settings.google_credentials_file,
            settings.spreadsheet_id,
            settings.worksheet,
            api_url=settings.sheets_api_url,
            timeout_s=settings.sheets_timeout_s,
        )
    return CsvSink(settings.csv_path)


def consumer_config(settings: NotifySettings) -> ConsumerConfig:
    return ConsumerConfig(
        stream=settings.stream,
        dead_stream=settings.dead_stream,
        group=settings.group,
        consumer=settings.consumer,
        batch=settings.batch,
        block_ms=settings.block_ms,
        claim_idle_ms=settings.claim_idle_ms,
        max_deliveries=settings.max_deliveries,
    )


def create_app(
    settings: NotifySettings,
    *,
    connect_redis: RedisFactory | None = None,
    sink: Sink | None = None,
) -> FastAPI:
    """``sink`` defaults to the one the settings name (``build_sink``)."""
    # A bad layout stops start-up here.
    layout = Layout.build(settings.columns, settings.locale, settings.timezone)
    sink = sink or build_sink(settings)
    if connect_redis is None:
        # A blocking read waits block_ms for new outcomes: the client's read timeout must outlast
        # it, or an idle stream reads as a Redis failure and the consumer backs off.
        read_timeout_s = settings.block_ms / 1000 + 2.0

        def connect_redis(url: str) -> Redis:
            return redis_client.connect(url, timeout_s=read_timeout_s)

    redis = redis_lifespan(settings.redis_url, connect_redis)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with redis(app):
            consumer = OutcomeConsumer(
                app.state.redis,
                sink,
                layout,
                consumer_config(settings),
                NotifierMetrics(app.state.metrics.registry),
            )
            app.state.consumer = consumer
            task = asyncio.create_task(consumer.run(), name="notifier-consumer")
            try:
                yield
            finally:
                consumer.stop()
                done, _ = await asyncio.wait({task}, timeout=consumer.config.block_ms / 1000 + 3)
                if not done:  # a stuck client call must not hold up shutdown
                    task.cancel()

    app = create_service_app(settings.service_name, lifespan=lifespan)
    app.state.settings = settings
    app.state.readiness["redis"] = redis_ready(app)
    app.state.readiness["sink"] = sink.check
    return app
