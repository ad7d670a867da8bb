"""Composition root of the bridge: the audio fork endpoint, the Event Socket, the calls."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, WebSocket

from callkit import audiofork, redis_client
from callkit.errors import DependencyUnavailable, UnsupportedFormat
from callkit.http import Lifespan, create_service_app
from callkit.lifecycle import RedisFactory, redis_lifespan, redis_ready
from callkit.models import ModelStore, Registry
from callkit.vad import SileroVad, VadModel
from fs_bridge.bridge import Bridge, RecognizerFactory
from fs_bridge.busy import BusyLine, Phrases, load_phrases
from fs_bridge.clients import AsrStream
from fs_bridge.esl import EventSocketFactory, connect_event_socket
from fs_bridge.session import CallSession
from fs_bridge.settings import BridgeSettings

log = logging.getLogger("fs_bridge")
SUBPROTOCOL = audiofork.SUBPROTOCOL


def create_app(
    settings: BridgeSettings,
    *,
    connect_redis: RedisFactory = redis_client.connect,
    event_socket: EventSocketFactory = connect_event_socket,
    recognizer: RecognizerFactory = AsrStream,
    transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """``recognizer`` and ``transport`` reach the ASR gateway and (over HTTP) the policy engine
    and the TTS gateway; tests replace them, production uses the defaults. A phrase file that
    cannot be read raises ConfigError here, before anything is served."""
    phrases = load_phrases(settings.phrases_file, settings.language)
    models = ModelStore(Registry.load())
    if settings.vad:
        models.registry.get(settings.vad_model)  # an unknown name stops start-up here
    app = create_service_app(
        settings.service_name,
        lifespan=_lifespan(
            settings, phrases, models, connect_redis, event_socket, recognizer, transport
        ),
    )
    app.state.settings = settings
    app.state.readiness["redis"] = redis_ready(app)

    async def esl_ready() -> None:
        if not app.state.bridge.esl.connected.is_set():
            raise DependencyUnavailable(
                f"FreeSWITCH event socket {settings.esl_host}:{settings.esl_port} not connected"
            )

    app.state.readiness["freeswitch"] = esl_ready

    @app.websocket("/fork/{call_uuid}")
    async def fork(websocket: WebSocket, call_uuid: str) -> None:
        bridge: Bridge = app.state.bridge
        if not _authorized(websocket, settings):
            bridge.metrics.refused.labels("auth").inc()
            log.warning("audio fork refused: bad credentials", extra={"call_id": call_uuid})
            await websocket.close(code=1008)
            return
        if call_uuid in bridge.calls:
            bridge.metrics.refused.labels("duplicate").inc()
            await websocket.close(code=1008)
            return
        offered = websocket.headers.get("sec-websocket-protocol", "")
        await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        bridge.metrics.calls.inc()
        first = await websocket.receive()
        if first["type"] == "websocket.disconnect":
            return
        payload: str | bytes | None = first.get("bytes")
        text = first.get("text")
        metadata = audiofork.ForkMetadata()
        if text is not None:
            try:
                metadata = audiofork.parse_metadata(text)
            except UnsupportedFormat as exc:
                bridge.metrics.refused.labels("rate").inc()
                log.warning(
                    "audio fork refused: unsupported rate",
                    extra={"call_id": call_uuid, "error": exc.message},
                )
                await websocket.close(code=1003)
                return
        if not bridge.has_room():
            await bridge.refuse(BusyLine(call_uuid, websocket, bridge, bridge.phrases, metadata))
            return
        call = CallSession(call_uuid, websocket, bridge, metadata)
        bridge.add(call)
        log.info("call connected", extra={"call_id": call_uuid})
        try:
            await call.run(payload)
        finally:
            bridge.remove(call_uuid)

    return app


def _authorized(websocket: WebSocket, settings: BridgeSettings) -> bool:
    token = settings.fork_token.get_secret_value() if settings.fork_token else None
    given = websocket.query_params.get("token")
    if token and given is not None:
        return hmac.compare_digest(given, token)
    header = websocket.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return False
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return hmac.compare_digest(user, settings.fork_user) and hmac.compare_digest(
        password, settings.fork_password.get_secret_value()
    )


def load_vad(settings: BridgeSettings, models: ModelStore) -> VadModel | None:
    """The shared speech detector (blocking: run in a thread at start-up); None when off. A
    missing or corrupt model file stops start-up with its name."""
    if not settings.vad:
        return None
    return SileroVad(next(models.resolve(settings.vad_model).glob("*.onnx")))


def _lifespan(
    settings: BridgeSettings,
    phrases: Phrases,
    models: ModelStore,
    connect_redis: RedisFactory,
    event_socket: EventSocketFactory,
    recognizer: RecognizerFactory,
    transport: httpx.AsyncBaseTransport | None,
) -> Lifespan:
    redis = redis_lifespan(settings.redis_url, connect_redis)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        vad = await asyncio.to_thread(load_vad, settings, models)
        async with redis(app):
            bridge = Bridge(
                settings,
                app.state.redis,
                app.state.metrics.registry,
                phrases,
                event_socket=event_socket,
                recognizer=recognizer,
                transport=transport,
                vad=vad,
            )
            app.state.bridge = bridge
            await bridge.start()
            try:
                yield
            finally:
                await bridge.close()

    return lifespan
