"""`GET` and `DELETE /session/{id}`: a call's dialog state, and forgetting a call."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from callkit.contracts.dialog import SESSION_ID
from callkit.errors import InvalidInput
from policy_engine.engine import DialogEngine

router = APIRouter(tags=["dialog"])


def _engine(request: Request) -> DialogEngine:
    engine: DialogEngine = request.app.state.engine
    return engine


def _session_id(session_id: str) -> str:
    if not re.match(SESSION_ID, session_id):
        raise InvalidInput(f"session id {session_id!r} is not valid", code="invalid_session_id")
    return session_id


@router.get("/session/{session_id}", summary="A call's dialog state and transcript.")
async def get_session(session_id: str, request: Request) -> JSONResponse:
    session = await _engine(request).get(_session_id(session_id))
    data = session.model_dump(mode="json", exclude={"responses", "last_reply"})
    return JSONResponse(data)


@router.delete(
    "/session/{session_id}",
    summary="Forget a call (frees its held slot).",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "Forgotten (also when there was nothing to forget)."}},
)
async def delete_session(session_id: str, request: Request) -> Response:
    await _engine(request).delete(_session_id(session_id))
    return Response(status_code=204)
