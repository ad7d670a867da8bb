"""The one client every caller of the LLM uses: streaming, structured output, retries, metrics.

It speaks the OpenAI chat-completions API to either backend and hides their one difference
that matters: how a JSON schema is enforced. vLLM enforces
``{"type": "json_schema", "json_schema": {...}}`` and silently ignores the llama.cpp form;
llama-cpp-python's server enforces ``{"type": "json_object", "schema": {...}}`` and rejects the
OpenAI form with HTTP 500. The client sends each backend the form it enforces, and validates
every structured reply itself: a reply that does not match the schema is an error, never data.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import openai
from openai import AsyncOpenAI
from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic import BaseModel, ValidationError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from callkit.errors import (
    AgentError,
    DependencyTimeout,
    DependencyUnavailable,
    InvalidInput,
    is_retryable,
    validation_problems,
)

Backend = Literal["llama.cpp", "vllm", "openai"]
Message = dict[str, str]
T = TypeVar("T", bound=BaseModel)


class LlmOutputError(AgentError):
    """The backend answered, but not with what was asked for (bad JSON, schema violation, no choices)."""

    code = "llm_bad_output"
    http_status = 502


class LlmRequestError(InvalidInput):
    """The backend refused the request itself (HTTP 400/404/422); repeating it will not help."""

    code = "llm_request_rejected"


@dataclass(slots=True)
class Usage:
    """Filled in while a stream runs: what the server reported about the request."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    ttft_s: float | None = None
    reported: bool = False  # the server sent a usage chunk; otherwise tokens are counted chunks


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    ttft_s: float
    total_s: float


class LlmMetrics:
    """Prometheus metrics of LLM calls, registered in the caller's registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = registry or CollectorRegistry()
        self.requests = Counter(
            "llm_requests_total",
            "LLM requests by kind and outcome.",
            ["kind", "outcome"],
            registry=reg,
        )
        self.ttft = Histogram(
            "llm_time_to_first_token_seconds",
            "Request start to the first streamed token.",
            registry=reg,
            buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10),
        )
        self.latency = Histogram(
            "llm_request_seconds",
            "Request start to the last token.",
            ["kind"],
            registry=reg,
            buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30),
        )
        self.tokens = Counter(
            "llm_tokens_total", "Tokens processed, by direction.", ["direction"], registry=reg
        )


def response_format(backend: Backend, name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The structured-output request field in the form ``backend`` enforces."""
    if backend == "llama.cpp":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


def backend_of(owned_by: str | None) -> Backend:
    """Tell the server kind from ``/v1/models``: vLLM says "vllm", llama-cpp-python says "me"."""
    if owned_by == "vllm":
        return "vllm"
    if owned_by in ("me", "llama-cpp", "llamacpp"):
        return "llama.cpp"
    return "openai"


def _translate(exc: BaseException) -> BaseException:
    """OpenAI SDK errors → the stack's errors, keeping retryability decided in callkit.errors."""
    if isinstance(exc, AgentError | asyncio.CancelledError):
        return exc
    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        return DependencyTimeout(f"LLM did not answer in time ({type(exc).__name__})")
    if isinstance(exc, openai.APIConnectionError):
        return DependencyUnavailable(f"LLM unreachable: {type(exc).__name__}")
    if isinstance(exc, openai.APIResponseValidationError):
        return LlmOutputError(f"LLM response did not have the OpenAI shape: {exc.message}")
    if isinstance(exc, openai.APIStatusError):
        if is_retryable(exc):
            return DependencyUnavailable(f"LLM answered HTTP {exc.status_code}")
        return LlmRequestError(
            f"LLM rejected the request with HTTP {exc.status_code}: {_short(exc.message)}"
        )
    if isinstance(exc, json.JSONDecodeError | openai.APIError):
        return LlmOutputError(f"LLM stream was malformed: {type(exc).__name__}: {_short(str(exc))}")
    return exc


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


class LlmClient:
    """Async client for an OpenAI-compatible chat server (vLLM, llama.cpp, or OpenAI itself).

    Timeouts: ``connect_timeout_s`` to open a connection, ``first_token_timeout_s`` until the
    first streamed token, ``total_timeout_s`` for the whole request. Retries (``retries`` extra
    attempts, exponential backoff with jitter) apply only to retryable failures and only before
    any token was handed to the caller. Cancelling the consuming task closes the HTTP stream,
    which makes the server stop generating.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        backend: Backend | Literal["auto"] = "auto",
        api_key: str | None = None,
        connect_timeout_s: float = 2.0,
        first_token_timeout_s: float = 15.0,
        total_timeout_s: float = 60.0,
        retries: int = 2,
        metrics: LlmMetrics | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._backend: Backend | None = None if backend == "auto" else backend
        self.first_token_timeout_s = first_token_timeout_s
        self.total_timeout_s = total_timeout_s
        self.retries = retries
        self.metrics = metrics or LlmMetrics()
        self._openai = AsyncOpenAI(
            base_url=self.base_url,
            api_key=api_key or "not-needed",
            max_retries=0,  # retries are ours: one policy, retryable errors only
            timeout=openai.Timeout(total_timeout_s, connect=connect_timeout_s),
        )

    async def aclose(self) -> None:
        await self._openai.close()

    async def __aenter__(self) -> LlmClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ discovery

    async def served_models(self) -> dict[str, str | None]:
        """Model ids the server serves, with who it says owns each (its ``/v1/models``)."""
        try:
            models = await self._openai.models.list()
        except Exception as exc:
            raise _translate(exc) from exc
        return {m.id: getattr(m, "owned_by", None) for m in models.data}

    async def backend(self) -> Backend:
        """The server kind, asked once from ``/v1/models`` unless configured."""
        if self._backend is None:
            served = await self.served_models()
            self._backend = backend_of(served.get(self.model, next(iter(served.values()), None)))
        return self._backend

    # ------------------------------------------------------------------ streaming

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 256,
        temperature: float = 0.3,
        stop: Sequence[str] | None = None,
        extra: dict[str, Any] | None = None,
        kind: str = "chat",
        usage: Usage | None = None,
    ) -> AsyncIterator[str]:
        """Yield text deltas as the model produces them; ``usage`` is filled in as they come."""
        started = time.perf_counter()
        first = True
        usage = usage if usage is not None else Usage()
        outcome = "error"
        request: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
            **(extra or {}),
        }
        if stop:
            request["stop"] = list(stop)
        try:
            stream = await self._open_stream(request)
            try:
                iterator = stream.__aiter__()
                while True:
                    try:
                        if first:
                            async with asyncio.timeout(self.first_token_timeout_s):
                                chunk = await iterator.__anext__()
                        else:
                            chunk = await iterator.__anext__()
                    except StopAsyncIteration:
                        break
                    if chunk.usage is not None:
                        usage.prompt_tokens = chunk.usage.prompt_tokens
                        usage.completion_tokens = chunk.usage.completion_tokens
                        usage.reported = True
                    if not chunk.choices:
                        continue
                    choice = chunk.choices[0]
                    if choice.finish_reason:
                        usage.finish_reason = choice.finish_reason
                    delta = choice.delta.content if choice.delta else None
                    if delta:
                        if not usage.reported:
                            # llama.cpp's server ignores stream_options and streams one token per chunk.
                            usage.completion_tokens += 1
                        if first:
                            first = False
                            usage.ttft_s = time.perf_counter() - started
                            self.metrics.ttft.observe(usage.ttft_s)
                        yield delta
            finally:
                await stream.close()
            outcome = "ok"
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except GeneratorExit:
            outcome = "cancelled"
            raise
        except TimeoutError as exc:
            raise DependencyTimeout(
                f"LLM produced no token within {self.first_token_timeout_s:g}s"
            ) from exc
        except Exception as exc:
            raise _translate(exc) from exc
        finally:
            self.metrics.requests.labels(kind, outcome).inc()
            self.metrics.latency.labels(kind).observe(time.perf_counter() - started)
            self.metrics.tokens.labels("prompt").inc(usage.prompt_tokens)
            self.metrics.tokens.labels("completion").inc(usage.completion_tokens)

    async def _open_stream(self, request: dict[str, Any]) -> Any:
        """Open the SSE stream, retrying retryable failures (nothing was yielded yet)."""
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=wait_exponential_jitter(multiplier=0.2, max=2.0, jitter=0.2),
            retry=retry_if_exception(lambda e: is_retryable(_translate(e))),
            reraise=True,
        ):
            with attempt:
                return await self._openai.chat.completions.create(**request)
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ whole replies

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 256,
        temperature: float = 0.3,
        stop: Sequence[str] | None = None,
        extra: dict[str, Any] | None = None,
        kind: str = "chat",
    ) -> Completion:
        """The whole reply, streamed underneath so time to first token is measured too."""
        started = time.perf_counter()
        usage = Usage()
        parts = [
            delta
            async for delta in self.stream(
                messages,
                max_tokens=max_tokens,
                temperature=temperature,
                stop=stop,
                extra=extra,
                kind=kind,
                usage=usage,
            )
        ]
        total = time.perf_counter() - started
        return Completion(
            text="".join(parts),
            finish_reason=usage.finish_reason,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            ttft_s=usage.ttft_s if usage.ttft_s is not None else total,
            total_s=total,
        )

    async def extract(
        self,
        messages: Sequence[Message],
        schema: type[T],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
    ) -> T:
        """A reply constrained to ``schema`` and validated against it.

        Raises :class:`LlmOutputError` when the reply is not JSON or does not validate
        (the backend's constraint is a grammar; the pydantic model is the contract).
        """
        backend = await self.backend()
        fmt = response_format(backend, schema.__name__, schema.model_json_schema())
        reply = await self.complete(
            messages,
            max_tokens=max_tokens,
            temperature=temperature,
            extra={"response_format": fmt},
            kind="extract",
        )
        if reply.finish_reason == "length":
            raise LlmOutputError(
                f"LLM reply was cut at max_tokens={max_tokens} before the JSON was complete",
                code="llm_truncated",
            )
        return parse_structured(reply.text, schema)

    async def warm_up(self, system_prompt: str) -> float:
        """Prime the server's prefix cache with the fixed system prompt; returns seconds taken."""
        started = time.perf_counter()
        await self.complete(
            [{"role": "system", "content": system_prompt}, {"role": "user", "content": "Hello."}],
            max_tokens=1,
            temperature=0.0,
            kind="warmup",
        )
        return time.perf_counter() - started


def parse_structured(text: str, schema: type[T]) -> T:
    """Validate a structured reply; every failure is an LlmOutputError naming what was wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LlmOutputError(
            f"LLM reply is not JSON ({exc.msg} at char {exc.pos}; {len(text)} chars, likely truncated)"
            if text.strip().startswith("{")
            else f"LLM reply is not JSON ({exc.msg})",
            code="llm_invalid_json",
        ) from None
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc)
        raise LlmOutputError(
            f"LLM reply violates the {schema.__name__} schema: {problems}",
            code="llm_schema_violation",
        ) from None
