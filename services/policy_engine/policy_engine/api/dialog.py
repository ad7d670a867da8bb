"""`POST /dialog`: one call event in, the agent's reply as JSON or as server-sent events."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import TypeAdapter, ValidationError

from callkit.contracts.dialog import (
    EVENT_TYPES,
    DialogError,
    DialogReply,
    DialogRequest,
    ReplyDone,
    ReplySentence,
    sse_frame,
)
from callkit.errors import AgentError, InvalidInput, PayloadTooLarge, validation_problems
from callkit.http import ClosingStreamingResponse, json_body
from policy_engine.engine import DialogEngine
from policy_engine.session import Sentence

_REQUEST = TypeAdapter(DialogRequest)


router = APIRouter(tags=["dialog"])


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
    except RecursionError:  # within the size limit, nested deeper than the parser goes
        raise InvalidInput(
            "body is not valid JSON: nested too deeply", code="invalid_json"
        ) from None
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
    summary="One call event in; the agent's reply as JSON, or as SSE with Accept: text/event-stream.",
    response_model=DialogReply,
    openapi_extra=json_body(_REQUEST),
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


async def _sse(
    task: asyncio.Task[DialogReply], queue: asyncio.Queue[Sentence | None], first: Sentence | None
) -> AsyncIterator[bytes]:
    """reply.sentence as soon as each sentence is ready, then reply.done (or error)."""
    sentence = first
    try:
        while sentence is not None:
            yield sse_frame(ReplySentence(text=sentence.text, cache_key=sentence.cache_key))
            sentence = await queue.get()
        try:
            reply = await task
        except AgentError as exc:
            yield sse_frame(
                DialogError(code=exc.code, message=exc.message, recoverable=exc.retryable)
            )
            return
        yield sse_frame(ReplyDone.model_validate(reply.model_dump(exclude={"replies"})))
    finally:
        if not task.done():
            # The client went away mid-turn: let the turn finish so the session stays whole.
            with contextlib.suppress(Exception):
                await asyncio.shield(task)
