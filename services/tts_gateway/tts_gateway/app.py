"""Composition root of the TTS gateway: builds the FastAPI app from settings."""

from fastapi import FastAPI

from callkit.http import create_service_app
from callkit.lifecycle import model_ready, redis_lifespan, redis_ready
from tts_gateway.settings import TtsSettings


def create_app(settings: TtsSettings) -> FastAPI:
    app = create_service_app(settings.service_name, lifespan=redis_lifespan(settings.redis_url))
    app.state.settings = settings
    app.state.readiness["redis"] = redis_ready(app)
    app.state.readiness["voice"] = model_ready(settings.voice)
    return app
