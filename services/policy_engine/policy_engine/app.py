"""Composition root of the policy engine: builds the FastAPI app from settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from callkit.errors import DependencyUnavailable
from callkit.http import Lifespan, create_service_app
from callkit.lifecycle import redis_lifespan, redis_ready
from callkit.llm_client import LlmClient, LlmMetrics
from policy_engine.settings import PolicySettings

log = logging.getLogger("policy_engine")
WARM_UP_RETRY_S = 5.0


def create_app(settings: PolicySettings) -> FastAPI:
    app = create_service_app(settings.service_name, lifespan=_lifespan(settings))
    app.state.settings = settings
    app.state.readiness["redis"] = redis_ready(app)

    async def llm_ready() -> None:
        served = await app.state.llm.served_models()
        if settings.llm_model not in served:
            raise DependencyUnavailable(
                f"LLM serves {sorted(served)}, not {settings.llm_model!r} (POLICY_LLM_MODEL)"
            )

    app.state.readiness["llm"] = llm_ready
    return app


def _lifespan(settings: PolicySettings) -> Lifespan:
    redis = redis_lifespan(settings.redis_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with redis(app):
            app.state.llm = LlmClient(
                settings.llm_base_url,
                settings.llm_model,
                metrics=LlmMetrics(app.state.metrics.registry),
            )
            warm = asyncio.create_task(_warm_up(app.state.llm, settings))
            try:
                yield
            finally:
                warm.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await warm
                await app.state.llm.aclose()

    return lifespan


async def _warm_up(llm: LlmClient, settings: PolicySettings) -> None:
    """Prime the LLM's prefix cache with the system prompt, retrying until the LLM is up."""
    path = settings.system_prompt_file
    if not path.is_file():
        log.warning("LLM warm-up skipped: system prompt file not found", extra={"path": str(path)})
        return
    prompt = path.read_text(encoding="utf-8").strip()
    while True:
        try:
            seconds = await llm.warm_up(prompt)
        except DependencyUnavailable as exc:
            log.info("LLM not reachable yet; warm-up will retry", extra={"reason": exc.message})
            await asyncio.sleep(WARM_UP_RETRY_S)
            continue
        log.info("LLM warm-up done", extra={"seconds": round(seconds, 3)})
        return
