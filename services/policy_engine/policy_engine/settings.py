"""Policy engine configuration (environment prefix ``POLICY_``)."""

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from callkit.settings import ServiceSettings, prefixed_config


class PolicySettings(ServiceSettings):
    model_config = prefixed_config("POLICY_")
    service_name: ClassVar[str] = "policy_engine"

    port: int = Field(8083, ge=1, le=65535, description="TCP port to listen on.")
    llm_base_url: str = Field(
        "http://127.0.0.1:8000/v1",
        pattern=r"^https?://",
        description="OpenAI-compatible base URL of the LLM service.",
    )
    session_ttl_s: int = Field(
        86400, ge=60, description="How long a call's dialog session is kept in Redis, in seconds."
    )
    llm_model: str = Field(
        "clinic-agent", min_length=1, description="Served model name to request."
    )
    system_prompt_file: Path = Field(
        Path("prompts/system.en.txt"),
        description="The dialog's fixed system prompt, always the first message (its KV cache is reused).",
    )
