"""LLM service configuration (environment prefix ``LLM_``)."""

import os
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from callkit.settings import ServiceSettings, prefixed_config


class LlmSettings(ServiceSettings):
    model_config = prefixed_config("LLM_")
    service_name: ClassVar[str] = "llm"

    port: int = Field(8000, ge=1, le=65535, description="TCP port of the OpenAI-compatible API.")
    model: str = Field(
        "qwen2.5-coder-0.5b-instruct-q4",
        description="GGUF model name from the model registry (kind llm, engine llama.cpp).",
    )
    served_model_name: str = Field(
        "clinic-agent", min_length=1, description="Model id clients send in requests."
    )
    context_tokens: int = Field(4096, ge=512, le=131072, description="Context window in tokens.")
    threads: int = Field(
        default_factory=lambda: os.cpu_count() or 2,
        ge=1,
        le=256,
        description="CPU threads for decoding.",
    )
    system_prompt_file: Path | None = Field(
        Path("prompts/system.en.txt"),
        description="The dialog's fixed system prompt; primed into the KV cache at start so the first call skips its prefill.",
    )
