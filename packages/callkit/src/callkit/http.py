"""The FastAPI shell every service shares: /health, /ready, /metrics and one error format.

Errors leave as ``{"detail": …, "error_id": …, "code": …}``; the error_id is logged with the
traceback so an operator can find the cause of a 500 without the response revealing it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from pydantic import BaseModel, TypeAdapter
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from callkit.errors import AgentError

log = logging.getLogger("callkit.http")

ReadinessCheck = Callable[[], Awaitable[None]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
READY_CHECK_TIMEOUT_S = 2.0


class ServiceMetrics:
    """A Prometheus registry per app (no process-global state), with HTTP request metrics and
    the process's own: process_resident_memory_bytes, process_cpu_seconds_total,
    process_open_fds (read from /proc at each scrape; absent where there is no /proc)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        self.http_requests = Counter(
            "http_requests_total",
            "HTTP requests by route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "http_request_duration_seconds",
            "Time to the response start, by route.",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class ClosingStreamingResponse(StreamingResponse):
    """A StreamingResponse that always closes its body iterator when the response ends.

    When the client disconnects while the response is waiting in ``send()``, Starlette cancels
    the sending task but leaves the async generator suspended at its ``yield``: its ``finally``
    (which cancels upstream work: a synthesis, an LLM stream) would run only when the garbage
    collector finalizes it. Closing it here runs that cleanup at once.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                await close()


class ErrorBody(BaseModel):
    """Every error the stack's apps answer (OpenAI-compatible routes add OpenAI's ``error``)."""

    detail: str
    error_id: str
    code: str


class Health(BaseModel):
    status: str
    service: str
    version: str


class Readiness(BaseModel):
    status: str
    service: str
    checks: dict[str, str]


_METRICS_CONTENT = {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}
_NOT_READY = {"model": Readiness, "description": "A dependency does not answer."}


def json_body(adapter: TypeAdapter[Any]) -> dict[str, Any]:
    """``openapi_extra`` documenting the JSON body of a route that reads its body itself (to
    bound its size before parsing), so the schema still says what the route accepts."""
    schema = adapter.json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    content = {"application/json": {"schema": inline(schema)}}
    return {"requestBody": {"required": True, "content": content}}


def error_body(detail: str, error_id: str, code: str) -> dict[str, str]:
    return {"detail": detail, "error_id": error_id, "code": code}


def error_response(
    request: Request,
    status: int,
    detail: str,
    code: str,
    headers: Mapping[str, str] | None = None,
    *,
    error_id: str | None = None,
) -> JSONResponse:
    """The stack's error body; OpenAI-compatible routes (/v1/…) also get OpenAI's ``error`` object,
    so the official clients show the message instead of a bare status code."""
    error_id = error_id or uuid.uuid4().hex[:12]
    body: dict[str, Any] = dict(error_body(detail, error_id, code))
    if request.url.path.startswith("/v1/"):
        kind = "invalid_request_error" if status < 500 else "server_error"
        body["error"] = {"message": detail, "type": kind, "param": None, "code": code}
    return JSONResponse(body, status_code=status, headers=dict(headers) if headers else None)


def create_service_app(
    service: str,
    *,
    version: str = "0.1.0",
    readiness: Mapping[str, ReadinessCheck] | None = None,
    lifespan: Lifespan | None = None,
    metrics: ServiceMetrics | None = None,
) -> FastAPI:
    """A FastAPI app with the stack's health, readiness, metrics and error handling."""
    app = FastAPI(title=service, version=version, lifespan=lifespan)
    install_ops(app, service, version=version, readiness=readiness, metrics=metrics)
    _install_error_handlers(app)
    _document_errors(app)
    return app


def _document_errors(app: FastAPI) -> None:
    """The OpenAPI schema says what the error handlers answer: FastAPI documents its own 422
    body (a list of problems), which these apps never send, and no other error status."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        schemas["ErrorBody"] = ErrorBody.model_json_schema()
        error = {
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        }
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                responses = operation.setdefault("responses", {})
                if "422" in responses:
                    responses["422"] = {"description": "Invalid input.", **error}
                responses["default"] = {"description": "An error.", **error}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_ops(
    app: FastAPI,
    service: str,
    *,
    version: str = "0.1.0",
    readiness: Mapping[str, ReadinessCheck] | None = None,
    metrics: ServiceMetrics | None = None,
) -> None:
    """Add /health, /ready, /metrics and request metrics to an app (ours or a library's)."""
    app.state.metrics = metrics or ServiceMetrics(service)
    app.state.readiness = dict(readiness or {})
    _install_request_metrics(app)

    @app.get("/health", tags=["ops"], summary="The process is alive.", response_model=Health)
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": service, "version": version}

    @app.get(
        "/ready",
        tags=["ops"],
        summary="Dependencies answer and models are loaded.",
        response_model=Readiness,
        responses={503: _NOT_READY},
    )
    async def ready() -> JSONResponse:
        results = await run_readiness(app.state.readiness)
        ok = all(v == "ok" for v in results.values())
        return JSONResponse(
            {"status": "ready" if ok else "not_ready", "service": service, "checks": results},
            status_code=200 if ok else 503,
        )

    @app.get(
        "/metrics",
        tags=["ops"],
        summary="Prometheus metrics.",
        response_class=Response,
        responses={200: {"content": _METRICS_CONTENT}},
    )
    async def prometheus() -> Response:
        return Response(app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


async def run_readiness(checks: Mapping[str, ReadinessCheck]) -> dict[str, str]:
    """Run every check concurrently with a deadline; "ok" or a short reason per check."""

    async def one(check: ReadinessCheck) -> str:
        try:
            await asyncio.wait_for(check(), READY_CHECK_TIMEOUT_S)
        except TimeoutError:
            return f"timed out after {READY_CHECK_TIMEOUT_S:g}s"
        except AgentError as exc:
            return exc.message
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        return "ok"

    names = list(checks)
    outcomes = await asyncio.gather(*(one(checks[n]) for n in names))
    return dict(zip(names, outcomes, strict=True))


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AgentError)
    async def agent_error(request: Request, exc: AgentError) -> JSONResponse:
        error_id = uuid.uuid4().hex[:12]
        level = logging.ERROR if exc.http_status >= 500 else logging.INFO
        log.log(
            level,
            "request failed",
            extra={"error_id": error_id, "code": exc.code, "route": _route(request)},
        )
        return error_response(request, exc.http_status, exc.message, exc.code, error_id=error_id)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Say where and what, never echo the input back (it may be a transcript).
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return error_response(request, 422, problems, "invalid_input")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(
            request, exc.status_code, str(exc.detail), f"http_{exc.status_code}", exc.headers
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        error_id = uuid.uuid4().hex[:12]
        log.error(
            "unhandled error", exc_info=exc, extra={"error_id": error_id, "route": _route(request)}
        )
        return error_response(request, 500, "internal error", "internal_error", error_id=error_id)


def _route(request: Request) -> str:
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "<unmatched>"


def _install_request_metrics(app: FastAPI) -> None:
    @app.middleware("http")
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            metrics: ServiceMetrics = request.app.state.metrics
            route = _route(request)
            metrics.http_requests.labels(request.method, route, str(status)).inc()
            metrics.http_latency.labels(request.method, route).observe(time.perf_counter() - start)


__all__ = [
    "ClosingStreamingResponse",
    "ErrorBody",
    "ServiceMetrics",
    "create_service_app",
    "error_body",
    "install_ops",
    "json_body",
    "run_readiness",
]
