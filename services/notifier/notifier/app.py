"""Composition root of the notifier: builds the FastAPI app from settings."""

from fastapi import FastAPI

from callkit.http import create_service_app
from callkit.lifecycle import redis_lifespan, redis_ready
from notifier.settings import NotifySettings


def create_app(settings: NotifySettings) -> FastAPI:
    app = create_service_app(settings.service_name, lifespan=redis_lifespan(settings.redis_url))
    app.state.settings = settings
    app.state.readiness["redis"] = redis_ready(app)
    return app
