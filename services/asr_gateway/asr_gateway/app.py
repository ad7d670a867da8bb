"""Composition root of the ASR gateway: builds the FastAPI app from settings."""

from fastapi import FastAPI

from asr_gateway.settings import AsrSettings
from callkit.http import create_service_app
from callkit.lifecycle import model_ready


def create_app(settings: AsrSettings) -> FastAPI:
    app = create_service_app(settings.service_name)
    app.state.settings = settings
    app.state.readiness["model"] = model_ready(settings.model)
    app.state.readiness["vad"] = model_ready(settings.vad_model)
    return app
