"""Service lifespans assembled from small parts: a Redis client, model checks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI

from callkit import redis_client
from callkit.http import Lifespan, ReadinessCheck
from callkit.models import ModelStore, Registry

RedisFactory = Callable[[str], aioredis.Redis]


def redis_lifespan(url: str, connect: RedisFactory = redis_client.connect) -> Lifespan:
    """Opens ``app.state.redis`` (``connect(url)``) on start-up and closes it on shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.redis = connect(url)
        try:
            yield
        finally:
            await app.state.redis.aclose()

    return lifespan


def redis_ready(app: FastAPI) -> ReadinessCheck:
    async def check() -> None:
        await redis_client.check(app.state.redis)

    return check


def model_ready(name: str, store: ModelStore | None = None) -> ReadinessCheck:
    """Readiness: the named model is in the cache and its files match the registry."""
    models = store or ModelStore(Registry.load())

    async def check() -> None:
        models.verify(name)

    return check
