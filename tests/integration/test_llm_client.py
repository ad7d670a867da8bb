"""The LLM client against the real embedded server, and against a server that misbehaves."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

import pytest
from openai_wire import FaultyOpenAI, serve
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from callkit.errors import DependencyTimeout, DependencyUnavailable
from callkit.llm_client import LlmClient, LlmMetrics, LlmOutputError, LlmRequestError

SYSTEM = "You are a clinic receptionist. Answer briefly."


class Intent(BaseModel):
    intent: Literal["book", "question", "not_interested"]


class BookingRequest(BaseModel):
    intent: Literal["book_appointment", "ask_price", "other"]
    study: Literal["MRI", "CT", "ultrasound", "unknown"]
    body_part: str


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


# ---------------------------------------------------------------- the real embedded server


async def test_streams_a_reply_token_by_token(embedded_llm: str) -> None:
    registry = CollectorRegistry()
    async with LlmClient(embedded_llm, "clinic-agent", metrics=LlmMetrics(registry)) as llm:
        deltas = [
            d
            async for d in llm.stream(
                [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": "What do you do?"},
                ],
                max_tokens=24,
                temperature=0,
            )
        ]
        assert await llm.backend() == "llama.cpp"
    assert len(deltas) > 3
    assert "".join(deltas).strip()
    assert sample(registry, "llm_requests_total", kind="chat", outcome="ok") == 1
    assert sample(registry, "llm_time_to_first_token_seconds_count") == 1
    assert sample(registry, "llm_tokens_total", direction="completion") > 3


async def test_schema_constrained_extraction_returns_a_validated_model(embedded_llm: str) -> None:
    async with LlmClient(embedded_llm, "clinic-agent") as llm:
        result = await llm.extract(
            [
                {"role": "system", "content": "Extract the caller's request as JSON."},
                {"role": "user", "content": "Hi, I'd like to book an MRI of my knee, please."},
            ],
            BookingRequest,
            max_tokens=60,
        )
    assert isinstance(result, BookingRequest)
    assert result.study == "MRI"
    assert result.intent == "book_appointment"
    assert "knee" in result.body_part.lower()


async def test_complete_reports_usage_and_timing(embedded_llm: str) -> None:
    async with LlmClient(embedded_llm, "clinic-agent") as llm:
        reply = await llm.complete(
            [{"role": "user", "content": "Count: one, two, three"}], max_tokens=8, temperature=0
        )
    assert reply.text
    assert 0 < reply.completion_tokens <= 8
    assert 0 < reply.ttft_s <= reply.total_s
    assert reply.finish_reason in ("stop", "length")


async def test_cancelling_a_stream_frees_the_server_for_the_next_call(embedded_llm: str) -> None:
    """A barge-in cancels the reply: the server must stop generating, not finish 400 tokens."""
    registry = CollectorRegistry()
    async with LlmClient(embedded_llm, "clinic-agent", metrics=LlmMetrics(registry)) as llm:
        long_request = [
            {"role": "user", "content": "Write a very long story about a lighthouse keeper."}
        ]

        first_token = asyncio.Event()

        async def consume() -> None:
            async for _ in llm.stream(long_request, max_tokens=400, temperature=0.8):
                first_token.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first_token.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        started = time.perf_counter()
        reply = await llm.complete(
            [{"role": "user", "content": "Say yes."}], max_tokens=4, temperature=0
        )
        waited = time.perf_counter() - started
    assert reply.text
    assert sample(registry, "llm_requests_total", kind="chat", outcome="cancelled") == 1
    # 400 tokens at ~20 tok/s would hold the single-slot server for ~20 s more.
    assert waited < 8, f"the next request waited {waited:.1f}s: generation was not stopped"


# ---------------------------------------------------------------- a misbehaving server


@pytest.fixture
def faulty(free_port: int):
    fake = FaultyOpenAI(owned_by="vllm")
    with serve(fake, free_port) as url:
        yield fake, url


async def test_retryable_failures_are_retried_then_succeed(faulty) -> None:
    fake, url = faulty
    async with LlmClient(url, "fail-twice", retries=2) as llm:
        reply = await llm.complete([{"role": "user", "content": "hi"}])
    assert reply.text == "Hello there."
    assert fake.calls["fail-twice"] == 3


async def test_retries_give_up_with_a_retryable_error(faulty) -> None:
    fake, url = faulty
    async with LlmClient(url, "fail-twice", retries=1) as llm:
        with pytest.raises(DependencyUnavailable, match="HTTP 503"):
            await llm.complete([{"role": "user", "content": "hi"}])
    assert fake.calls["fail-twice"] == 2


async def test_a_rejected_request_is_not_retried(faulty) -> None:
    fake, url = faulty
    async with LlmClient(url, "bad-request", retries=3) as llm:
        with pytest.raises(LlmRequestError, match=r"HTTP 400: .*max_tokens too large"):
            await llm.complete([{"role": "user", "content": "hi"}])
    assert fake.calls["bad-request"] == 1


async def test_vllm_gets_the_json_schema_form(faulty) -> None:
    fake, url = faulty
    async with LlmClient(url, "good-json") as llm:
        assert (await llm.extract([{"role": "user", "content": "book"}], Intent)).intent == "book"
    sent = fake.bodies[-1]["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["schema"]["properties"]["intent"]["enum"] == [
        "book",
        "question",
        "not_interested",
    ]


async def test_llama_cpp_gets_the_json_object_form(free_port: int) -> None:
    fake = FaultyOpenAI(owned_by="me")
    with serve(fake, free_port) as url:
        async with LlmClient(url, "good-json") as llm:
            await llm.extract([{"role": "user", "content": "book"}], Intent)
    sent = fake.bodies[-1]["response_format"]
    assert sent["type"] == "json_object"
    assert sent["schema"]["required"] == ["intent"]


@pytest.mark.parametrize(
    ("model", "code", "message"),
    [
        ("not-json", "llm_invalid_json", "not JSON"),
        (
            "wrong-schema",
            "llm_schema_violation",
            "violates the Intent schema: intent: Input should be",
        ),
        ("truncated", "llm_truncated", "cut at max_tokens"),
        ("garbage", "llm_bad_output", "malformed"),
    ],
)
async def test_bad_output_is_reported_never_returned(
    faulty, model: str, code: str, message: str
) -> None:
    _, url = faulty
    async with LlmClient(url, model, backend="vllm", retries=0) as llm:
        with pytest.raises(LlmOutputError, match=message) as err:
            await llm.extract([{"role": "user", "content": "x"}], Intent)
    assert err.value.code == code


async def test_no_first_token_in_time_is_a_timeout(faulty) -> None:
    _, url = faulty
    async with LlmClient(
        url, "silent", backend="vllm", first_token_timeout_s=0.5, retries=0
    ) as llm:
        started = time.perf_counter()
        with pytest.raises(DependencyTimeout, match=r"no token within 0\.5s"):
            await llm.complete([{"role": "user", "content": "x"}])
    assert time.perf_counter() - started < 5


async def test_unreachable_server_is_a_retryable_dependency_error(dead_port: int) -> None:
    async with LlmClient(f"http://127.0.0.1:{dead_port}/v1", "m", backend="vllm", retries=1) as llm:
        with pytest.raises(DependencyUnavailable, match="unreachable") as err:
            await llm.complete([{"role": "user", "content": "x"}])
    assert err.value.retryable
