"""Composition root of the fs bridge: builds the FastAPI app from settings."""

from fastapi import FastAPI

from callkit.http import create_service_app
from callkit.lifecycle import redis_lifespan, redis_ready
from fs_bridge.settings import BridgeSettings


def create_app(settings: BridgeSettings) -> FastAPI:
    app = create_service_app(settings.service_name, lifespan=redis_lifespan(settings.redis_url))
    app.state.settings = settings
    app.state.readiness["redis"] = redis_ready(app)
    return app
