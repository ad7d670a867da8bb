"""Composition root of the ASR gateway: the shared model, VAD, scheduler and the two edges."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI

from asr_gateway.api import openai, ws
from asr_gateway.engines import AsrEngine, FasterWhisperEngine
from asr_gateway.languages import Languages
from asr_gateway.scheduler import AsrMetrics, InferenceScheduler
from asr_gateway.settings import AsrSettings
from asr_gateway.turn import SmartTurn, TurnDetector
from callkit.errors import DependencyUnavailable, ModelError
from callkit.http import create_service_app
from callkit.models import ModelStore, Registry
from callkit.vad import SileroVad, VadModel

#: Load the recognizer or the VAD (blocking; run in a thread at start-up).
EngineLoader = Callable[[AsrSettings, ModelStore], AsrEngine]
VadLoader = Callable[[AsrSettings, ModelStore], VadModel]
TurnLoader = Callable[[AsrSettings, ModelStore], SmartTurn]


def load_whisper(settings: AsrSettings, models: ModelStore) -> AsrEngine:
    return FasterWhisperEngine(
        models,
        settings.model,
        device=settings.device,
        cpu_threads=settings.cpu_threads,
        window_s=settings.encoder_window_s,
        prompts=settings.initial_prompts,
    )


def load_silero(settings: AsrSettings, models: ModelStore) -> VadModel:
    return SileroVad(next(models.resolve(settings.vad_model).glob("*.onnx")))


def load_smart_turn(settings: AsrSettings, models: ModelStore) -> SmartTurn:
    return SmartTurn(next(models.resolve(settings.turn_model).glob("*.onnx")))


def create_app(
    settings: AsrSettings,
    *,
    store: ModelStore | None = None,
    load_engine: EngineLoader = load_whisper,
    load_vad: VadLoader = load_silero,
    load_turn: TurnLoader = load_smart_turn,
) -> FastAPI:
    models = store or ModelStore(Registry.load())
    names = [settings.model, settings.vad_model]
    names += [settings.turn_model] if settings.turn_detection else []
    for name in names:
        models.registry.get(name)  # an unknown name stops start-up here, with the known names
    languages = Languages.of(
        settings.model,
        models.registry.get(settings.model).languages,
        vocabularies=settings.vocabulary,
        prompts=settings.initial_prompts,
    )
    # A default language the model cannot decode stops start-up, naming a model that can.
    languages.check_default(settings.language)
    turn_problem: list[str] = []  # why the turn model did not load, for /ready

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.vad = await asyncio.to_thread(load_vad, settings, models)
        metrics = AsrMetrics(app.state.metrics.registry)
        turn_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr-turn")
        if settings.turn_detection:
            try:
                turn_model = await asyncio.to_thread(load_turn, settings, models)
            except (ModelError, StopIteration) as exc:
                # Not ready (and calls end on the fixed end silence) until the model is there.
                turn_problem.append(str(exc) or f"no .onnx file for {settings.turn_model}")
            else:
                app.state.turn = TurnDetector(turn_model, turn_executor, metrics)
        engine = await asyncio.to_thread(load_engine, settings, models)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr-model")
        scheduler = InferenceScheduler(
            engine,
            executor,
            metrics,
            min_partial_interval_ms=settings.min_partial_interval_ms,
            max_batch=settings.max_batch or (8 if engine.device == "cuda" else 1),
        )
        scheduler.start()
        app.state.scheduler = scheduler
        try:
            yield
        finally:
            await scheduler.stop()
            executor.shutdown(wait=False, cancel_futures=True)
            turn_executor.shutdown(wait=False, cancel_futures=True)

    app = create_service_app(settings.service_name, lifespan=lifespan)
    app.state.settings = settings
    app.state.connections = set()
    app.state.languages = languages
    app.include_router(ws.router)
    app.include_router(openai.router)

    async def model_loaded() -> None:
        if getattr(app.state, "scheduler", None) is None:
            raise DependencyUnavailable(f"model {settings.model} is loading")

    app.state.readiness["model"] = model_loaded

    async def turn_model_loaded() -> None:
        if turn_problem:
            raise DependencyUnavailable(
                f"turn model {settings.turn_model}: {turn_problem[0]} "
                "(ASR_TURN_DETECTION=false runs without it)"
            )
        if getattr(app.state, "turn", None) is None:
            raise DependencyUnavailable(f"turn model {settings.turn_model} is loading")

    if settings.turn_detection:
        app.state.readiness["turn_model"] = turn_model_loaded
    return app
