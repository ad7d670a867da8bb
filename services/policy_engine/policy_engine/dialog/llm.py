"""What a turn asks of the LLM: a reply constrained to a schema, or text streamed as it comes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

T = TypeVar("T", bound=BaseModel)


class DialogLlm(Protocol):
    """What a turn asks of the LLM (``callkit.llm_client.LlmClient`` is the real one)."""

    async def extract(
        self,
        messages: Sequence[dict[str, Any]],
        schema: type[T],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
    ) -> T: ...

    def stream(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        max_tokens: int = 256,
        temperature: float = 0.3,
        kind: str = "chat",
    ) -> AsyncIterator[str]: ...
