"""Composition root of the TTS gateway: voices, cache, synthesizer, prerender, routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI

from callkit import redis_client
from callkit.errors import ConfigError, DependencyUnavailable, ModelError
from callkit.http import create_service_app
from callkit.lifecycle import RedisFactory, redis_lifespan, redis_ready
from callkit.models import ModelStore, Registry
from tts_gateway.api.routes import router
from tts_gateway.cache import AudioCache, FileCache
from tts_gateway.engines import PiperEngine, TtsEngine
from tts_gateway.prerender import PrerenderProgress, prerender
from tts_gateway.settings import TtsSettings
from tts_gateway.synthesizer import Synthesizer, TtsMetrics
from tts_gateway.voices import MissingVoice, base_language, registry_voice

log = logging.getLogger("tts_gateway")

#: Load one voice by name (blocking; run in a thread at start-up).
VoiceLoader = Callable[[TtsSettings, ModelStore, str], TtsEngine]


def load_piper(settings: TtsSettings, models: ModelStore, name: str) -> TtsEngine:
    return PiperEngine.from_registry(models, name, threads=settings.onnx_threads)


def create_app(
    settings: TtsSettings,
    *,
    store: ModelStore | None = None,
    connect_redis: RedisFactory = redis_client.connect,
    load_voice: VoiceLoader = load_piper,
) -> FastAPI:
    models = store or ModelStore(Registry.load())
    redis = redis_lifespan(settings.redis_url, connect_redis)
    configured = [settings.voice, *[v for v in settings.extra_voices if v != settings.voice]]
    progress = PrerenderProgress()
    missing: dict[str, MissingVoice] = {}

    async def load(engines: dict[str, TtsEngine], name: str, language: str | None) -> None:
        try:
            engines[name] = await asyncio.to_thread(load_voice, settings, models, name)
        except ModelError as exc:
            # Not fatal: the gateway serves the voices it has, and /ready names this one.
            if language is None and name in models.registry.entries:
                language = models.registry.entries[name].languages[0]
            missing[name] = MissingVoice(name, language, exc.message)
            log.error("voice not loaded", extra={"voice": name, "error": exc.message})

    async def load_voices() -> dict[str, TtsEngine]:
        engines: dict[str, TtsEngine] = {}
        for name in configured:
            await load(engines, name, None)
        for language in settings.languages:
            spoken = {base_language(e.language) for e in engines.values()} | {
                base_language(m.language) for m in missing.values() if m.language
            }
            if base_language(language) in spoken:
                continue
            voice = registry_voice(models.registry, language)
            if voice is None:
                raise ConfigError(
                    f"TTS_LANGUAGES has {language!r}, and the model registry has no voice for it"
                )
            await load(engines, voice, language)
        return engines

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with redis(app):
            engines = await load_voices()
            executor = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="tts")
            cache = AudioCache(
                app.state.redis,
                FileCache(settings.cache_dir, settings.cache_max_mb * 1024 * 1024),
                ttl_s=settings.cache_ttl_s,
                max_redis_entry_bytes=settings.cache_max_entry_kb * 1024,
                namespace=settings.cache_namespace,
            )
            app.state.synth = Synthesizer(
                engines,
                settings.voice,
                cache,
                TtsMetrics(app.state.metrics.registry),
                executor,
                chunk_ms=settings.chunk_ms,
                max_text_chars=settings.max_text_chars,
                missing=missing,
                registry=models.registry,
            )
            task = None
            if settings.prerender:
                task = asyncio.create_task(
                    prerender(
                        app.state.synth,
                        settings.prompts_dir,
                        list(engines),
                        settings.prerender_rates,
                        progress,
                    )
                )
            else:
                progress.finished = True
            try:
                yield
            finally:
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                executor.shutdown(wait=False, cancel_futures=True)

    app = create_service_app(settings.service_name, lifespan=lifespan)
    app.state.settings = settings
    app.state.prerender = progress
    app.include_router(router)
    app.state.readiness["redis"] = redis_ready(app)

    async def prerendered() -> None:
        if not progress.finished:
            raise DependencyUnavailable(
                f"prerendering fixed prompts: {progress.done}/{progress.total}"
            )

    app.state.readiness["prerender"] = prerendered

    async def voices_loaded() -> None:
        if missing:
            raise DependencyUnavailable(
                "; ".join(
                    f"no voice for {m.language!r}: {m.reason}" if m.language else m.reason
                    for m in missing.values()
                )
            )

    app.state.readiness["voices"] = voices_loaded
    return app
