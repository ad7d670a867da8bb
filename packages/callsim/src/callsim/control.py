"""The running emulator's control port: `callsim run --emulator URL` places calls through it.

``POST /calls`` with ``{"script": {...}, "options": {...}}`` plays the script on this emulator's
switch (the one the bridge is connected to) and streams newline-delimited JSON: ``{"progress":
"..."}`` lines while the call runs, then ``{"report": {...}}``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from callkit.errors import InvalidInput
from callkit.http import create_service_app
from callsim.run import RunOptions, run_call
from callsim.script import CallScript
from callsim.switch import Switch


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    script: dict[str, Any]
    options: dict[str, Any] = {}


def create_control_app(switch: Switch, defaults: RunOptions) -> FastAPI:
    app = create_service_app("callsim")

    @app.post(
        "/calls", summary="Play one call script on this emulator; NDJSON progress and report."
    )
    async def place(request: RunRequest) -> StreamingResponse:
        try:
            script = CallScript.model_validate(request.script)
        except ValidationError as exc:
            raise InvalidInput(f"invalid call script: {exc.errors()[0]['msg']}") from None
        options = RunOptions(
            fork_url=request.options.get("fork_url", defaults.fork_url),
            fork_user=request.options.get("fork_user", defaults.fork_user),
            fork_password=request.options.get("fork_password", defaults.fork_password),
            recordings=Path(request.options.get("recordings", defaults.recordings)),
            redis_url=request.options.get("redis_url", defaults.redis_url),
        )
        return StreamingResponse(
            _stream(switch, script, options), media_type="application/x-ndjson"
        )

    return app


async def _stream(switch: Switch, script: CallScript, options: RunOptions) -> AsyncIterator[bytes]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    task = asyncio.create_task(run_call(switch, script, options, queue.put_nowait))
    while not task.done():
        try:
            line = await asyncio.wait_for(queue.get(), 0.5)
        except TimeoutError:
            continue
        yield (json.dumps({"progress": line}) + "\n").encode()
    yield (json.dumps({"report": task.result()}) + "\n").encode()
