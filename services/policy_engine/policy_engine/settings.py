"""Policy engine configuration (environment prefix ``POLICY_``)."""

from pathlib import Path
from typing import ClassVar

from pydantic import Field, model_validator

from callkit.contracts.streams import APPOINTMENT_PREFIX
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
    llm_model: str = Field(
        "clinic-agent", min_length=1, description="Served model name to request."
    )
    llm_enabled: bool = Field(
        True,
        description="Use the LLM for names, symptoms, intents and free answers; off runs on the "
        "deterministic parsers alone.",
    )
    require_llm: bool = Field(
        False,
        description="Report not ready while the LLM is down (by default the script goes on "
        "without it and policy_llm_up says so).",
    )
    llm_timeout_s: float = Field(
        8.0, gt=0, le=120, description="Longest wait for the LLM's first token in one turn."
    )
    llm_deadline_s: float = Field(
        2.0,
        gt=0,
        le=60,
        description="From the caller's words to the LLM's result (extraction, or a free "
        "answer's first sentence): past this the result is dropped and the script goes on "
        "without it (the question again, or its next step).",
    )
    ack_after_s: float = Field(
        0.7,
        ge=0,
        le=10,
        description="A turn waiting on the LLM that has said nothing this long says a short "
        "prerendered acknowledgement first (script.yaml's acknowledgements); 0 never does.",
    )
    system_prompt_file: Path = Field(
        Path("prompts/system.en.txt"),
        description="The dialog's fixed system prompt, always the first message (its KV cache is reused).",
    )
    script_dir: Path = Field(
        Path("prompts/clinic"),
        description="The clinic: its folder of script, clinic facts, catalogue, schedule, FAQ "
        "and lexicon (prompts/clinic: the English-speaking clinic, also in Russian; "
        "prompts/clinic_ru: the Russian diagnostic center, in roubles and Moscow time).",
    )
    locale: str | None = Field(
        None,
        min_length=2,
        max_length=8,
        description="Default call locale, for a call whose call.started and campaign name none; "
        "unset, the clinic's (clinic.yaml's locale, else the script's first).",
    )
    session_ttl_s: int = Field(
        86400, ge=60, description="How long a call's dialog session is kept in Redis, in seconds."
    )
    max_text_chars: int = Field(
        2000, ge=10, le=100_000, description="Longest utterance accepted, in characters."
    )
    max_body_bytes: int = Field(
        65536, ge=1024, description="Largest POST /dialog body accepted, in bytes."
    )
    calendar_namespace: str = Field(
        APPOINTMENT_PREFIX,
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="Redis key prefix of appointment slots (one per clinic sharing a Redis).",
    )
    max_silences: int = Field(
        2, ge=0, le=10, description="Reprompts for a silent caller before a polite hang-up."
    )
    outcome_exit_grace_s: float = Field(
        60.0,
        gt=0,
        description="After the script's exit (a transfer excepted), how long to wait for the "
        "bridge's call.ended before the outcome is written without its recording and latency.",
    )
    outcome_idle_s: float = Field(
        1800.0,
        gt=0,
        description="A call with no event for this long (or transferred this long ago) is taken "
        "as lost and its outcome written from the session; below POLICY_SESSION_TTL_S.",
    )
    outcome_sweep_interval_s: float = Field(
        5.0,
        gt=0,
        le=300,
        description="How often each replica looks for calls whose outcome is due.",
    )

    @model_validator(mode="after")
    def _outcome_due_before_the_session_expires(self) -> "PolicySettings":
        longest = max(self.outcome_idle_s, self.outcome_exit_grace_s)
        if longest >= self.session_ttl_s:
            raise ValueError(
                f"POLICY_OUTCOME_IDLE_S and POLICY_OUTCOME_EXIT_GRACE_S ({longest:g}) must be "
                f"below POLICY_SESSION_TTL_S ({self.session_ttl_s}): a lost call's outcome is "
                "written from its session"
            )
        return self
