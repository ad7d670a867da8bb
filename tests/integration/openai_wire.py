"""A fault-injecting server that speaks the OpenAI chat-completions wire protocol.

The real embedded server cannot be made to misbehave on demand, so the client's handling of
failures (5xx then success, 4xx, malformed streams, replies that break the schema, a server that
never sends a token) is tested against this one. It streams server-sent events exactly as vLLM
and llama.cpp do: ``data: {chat.completion.chunk}`` lines, a usage chunk, ``data: [DONE]``.
The model name picks the behaviour; every request body is recorded for assertions.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from serving import serving_in_thread


def chunk(
    content: str | None, *, finish: str | None = None, usage: dict[str, int] | None = None
) -> str:
    body: dict[str, Any] = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "m",
        "choices": []
        if usage
        else [
            {"index": 0, "delta": {"content": content} if content else {}, "finish_reason": finish}
        ],
    }
    if usage:
        body["usage"] = usage
    return f"data: {json.dumps(body)}\n\n"


class FaultyOpenAI:
    def __init__(self, owned_by: str = "vllm") -> None:
        self.owned_by = owned_by
        self.calls: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []
        self.app = FastAPI()
        self.app.get("/v1/models")(self.models)
        self.app.post("/v1/chat/completions")(self.chat)

    async def models(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": "clinic-agent", "object": "model", "owned_by": self.owned_by}],
        }

    async def chat(self, request: Request) -> Any:
        body = await request.json()
        self.bodies.append(body)
        model = body["model"]
        self.calls[model] += 1
        if model == "fail-twice" and self.calls[model] <= 2:
            return JSONResponse(
                {"error": {"message": "overloaded", "type": "server_error"}}, status_code=503
            )
        if model == "bad-request":
            return JSONResponse(
                {"error": {"message": "max_tokens too large", "type": "invalid_request"}},
                status_code=400,
            )
        replies = {
            "fail-twice": ["Hello", " there."],
            "not-json": ["Sure! Here", " is the data."],
            "wrong-schema": ['{"intent": ', '"dance"}'],
            "truncated": ['{"intent": "bo'],
            "good-json": ['{"intent": ', '"book"}'],
        }
        if model == "garbage":
            return StreamingResponse(
                self._raw(["data: {not json at all\n\n"]), media_type="text/event-stream"
            )
        if model == "silent":
            return StreamingResponse(self._silent(), media_type="text/event-stream")
        parts = replies.get(model, ["ok"])
        finish = "length" if model == "truncated" else "stop"
        return StreamingResponse(self._stream(parts, finish), media_type="text/event-stream")

    async def _stream(self, parts: list[str], finish: str) -> AsyncIterator[str]:
        for p in parts:
            yield chunk(p)
            await asyncio.sleep(0.01)
        yield chunk(None, finish=finish)
        yield chunk(
            None,
            usage={
                "prompt_tokens": 11,
                "completion_tokens": len(parts),
                "total_tokens": 11 + len(parts),
            },
        )
        yield "data: [DONE]\n\n"

    async def _raw(self, lines: list[str]) -> AsyncIterator[str]:
        for line in lines:
            yield line

    async def _silent(self) -> AsyncIterator[str]:
        await asyncio.sleep(30)
        yield chunk("late")


@contextmanager
def serve(fake: FaultyOpenAI, port: int) -> Iterator[str]:
    with serving_in_thread(fake.app, port) as url:
        yield f"{url}/v1"
