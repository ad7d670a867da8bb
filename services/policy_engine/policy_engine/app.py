"""Composition root of the policy engine: the script, the engine and the HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import Gauge
from pydantic import TypeAdapter, ValidationError

from callkit.errors import (
    AgentError,
    DependencyUnavailable,
    InvalidInput,
    PayloadTooLarge,
    validation_problems,
)
from callkit.http import ClosingStreamingResponse, Lifespan, create_service_app
from callkit.lifecycle import redis_lifespan, redis_ready
from callkit.llm_client import LlmClient, LlmMetrics
from policy_engine.engine import DialogEngine, PolicyMetrics
from policy_engine.events import EVENT_TYPES, SESSION_ID, DialogReply, DialogRequest
from policy_engine.script import Script, load_script
from policy_engine.session import Sentence
from policy_engine.settings import PolicySettings

log = logging.getLogger("policy_engine")
WARM_UP_RETRY_S = 5.0
LLM_PROBE_S = 10.0
_REQUEST = TypeAdapter(DialogRequest)


def create_app(settings: PolicySettings) -> FastAPI:
    script = load_script(settings.script_dir)  # refuses a broken script, naming the state
    if settings.locale not in script.locales:
        raise InvalidInput(
            f"POLICY_LOCALE={settings.locale!r} is not in the script ({', '.join(script.locales)})"
        )
    system_prompt = _system_prompt(settings)
    app = create_service_app(
        settings.service_name, lifespan=_lifespan(settings, script, system_prompt)
    )
    app.state.settings = settings
    app.state.readiness["redis"] = redis_ready(app)
    app.state.policy_metrics = PolicyMetrics(app.state.metrics.registry)
    app.state.llm_up = Gauge(
        "policy_llm_up",
        "1 while the LLM answers; 0 means turns run on the deterministic parsers alone.",
        registry=app.state.metrics.registry,
    )
    if settings.llm_enabled and settings.require_llm:

        async def llm_ready() -> None:
            served = await app.state.llm.served_models()
            if settings.llm_model not in served:
                raise DependencyUnavailable(
                    f"LLM serves {sorted(served)}, not {settings.llm_model!r} (POLICY_LLM_MODEL)"
                )

        app.state.readiness["llm"] = llm_ready
    app.include_router(router)
    return app


def _system_prompt(settings: PolicySettings) -> str:
    path = settings.system_prompt_file
    if not path.is_file():
        raise InvalidInput(f"system prompt file {path} does not exist (POLICY_SYSTEM_PROMPT_FILE)")
    return path.read_text(encoding="utf-8").strip()


def _lifespan(settings: PolicySettings, script: Script, system_prompt: str) -> Lifespan:
    redis = redis_lifespan(settings.redis_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with redis(app):
            llm = None
            if settings.llm_enabled:
                llm = LlmClient(
                    settings.llm_base_url,
                    settings.llm_model,
                    first_token_timeout_s=settings.llm_timeout_s,
                    total_timeout_s=max(30.0, settings.llm_timeout_s * 2),
                    retries=1,
                    metrics=LlmMetrics(app.state.metrics.registry),
                )
            app.state.llm = llm
            app.state.engine = DialogEngine(
                script,
                app.state.redis,
                llm=llm,
                system_prompt=system_prompt,
                session_ttl_s=settings.session_ttl_s,
                max_text_chars=settings.max_text_chars,
                max_silences=settings.max_silences,
                default_locale=settings.locale,
                metrics=app.state.policy_metrics,
            )
            app.state.engine.calendar.prefix = settings.calendar_namespace
            log.info(
                "script loaded",
                extra={"states": len(script.states), "locales": list(script.locales)},
            )
            tasks = [asyncio.create_task(_watch_llm(app, llm, system_prompt))] if llm else []
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                if llm is not None:
                    await llm.aclose()

    return lifespan


async def _watch_llm(app: FastAPI, llm: LlmClient, system_prompt: str) -> None:
    """Warm the LLM's prefix cache once it answers, then keep policy_llm_up current."""
    warmed = False
    while True:
        try:
            if not warmed:
                seconds = await llm.warm_up(system_prompt)
                warmed = True
                log.info("LLM warm-up done", extra={"seconds": round(seconds, 3)})
            else:
                await llm.served_models()
            app.state.llm_up.set(1)
        except AgentError as exc:
            app.state.llm_up.set(0)
            log.info(
                "LLM not reachable; the script runs on its parsers", extra={"reason": exc.message}
            )
        await asyncio.sleep(LLM_PROBE_S if warmed else WARM_UP_RETRY_S)


router = APIRouter()


async def _read_request(request: Request) -> DialogRequest:
    limit = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"body is {declared} bytes; the limit is {limit} (POLICY_MAX_BODY_BYTES)"
        )
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"body is over {limit} bytes (POLICY_MAX_BODY_BYTES)")
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"body is not valid JSON: {exc}", code="invalid_json") from None
    if isinstance(data, dict) and isinstance(data.get("event"), dict):
        kind = data["event"].get("type")
        if kind not in EVENT_TYPES:
            raise InvalidInput(
                f"unknown event type {kind!r}; expected one of {', '.join(EVENT_TYPES)}",
                code="unknown_event",
            )
    try:
        return _REQUEST.validate_python(data)
    except ValidationError as exc:
        problems = validation_problems(exc)
        raise InvalidInput(f"malformed dialog request: {problems}", code="invalid_event") from None


@router.post(
    "/dialog",
    tags=["dialog"],
    summary="One call event in; the agent's reply as JSON, or as SSE with Accept: text/event-stream.",
    response_model=DialogReply,
)
async def dialog(request: Request) -> Response:
    req = await _read_request(request)
    engine: DialogEngine = request.app.state.engine
    if "text/event-stream" not in request.headers.get("accept", ""):
        reply = await engine.handle(req.session_id, req.event)
        return JSONResponse(reply.model_dump(mode="json"))
    queue: asyncio.Queue[Sentence | None] = asyncio.Queue()

    async def emit(sentence: Sentence) -> None:
        await queue.put(sentence)

    async def run() -> DialogReply:
        try:
            return await engine.handle(req.session_id, req.event, emit)
        finally:
            await queue.put(None)

    task = asyncio.create_task(run())
    first = await queue.get()
    failure = task.exception() if first is None else None
    if failure is not None:
        # Failed before saying anything (unknown session, bad event): a plain HTTP error.
        raise failure
    return ClosingStreamingResponse(
        _sse(task, queue, first),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
    )


def _sse_event(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def _sse(
    task: asyncio.Task[DialogReply], queue: asyncio.Queue[Sentence | None], first: Sentence | None
) -> AsyncIterator[bytes]:
    """reply.sentence as soon as each sentence is ready, then reply.done (or error)."""
    sentence = first
    try:
        while sentence is not None:
            yield _sse_event(
                "reply.sentence", {"text": sentence.text, "cache_key": sentence.cache_key}
            )
            sentence = await queue.get()
        try:
            reply = await task
        except AgentError as exc:
            yield _sse_event(
                "error", {"code": exc.code, "message": exc.message, "recoverable": exc.retryable}
            )
            return
        yield _sse_event("reply.done", reply.model_dump(mode="json", exclude={"replies"}))
    finally:
        if not task.done():
            # The client went away mid-turn: let the turn finish so the session stays whole.
            with contextlib.suppress(Exception):
                await asyncio.shield(task)


def _session_id(session_id: str) -> str:
    if not re.match(SESSION_ID, session_id):
        raise InvalidInput(f"session id {session_id!r} is not valid", code="invalid_session_id")
    return session_id


@router.get(
    "/session/{session_id}", tags=["dialog"], summary="A call's dialog state and transcript."
)
async def get_session(session_id: str, request: Request) -> JSONResponse:
    session = await request.app.state.engine.get(_session_id(session_id))
    data = session.model_dump(mode="json", exclude={"responses", "last_reply"})
    return JSONResponse(data)


@router.delete(
    "/session/{session_id}", tags=["dialog"], summary="Forget a call (frees its held slot)."
)
async def delete_session(session_id: str, request: Request) -> Response:
    await request.app.state.engine.delete(_session_id(session_id))
    return Response(status_code=204)
