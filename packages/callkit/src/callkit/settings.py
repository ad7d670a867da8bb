"""pydantic-settings base for every service: env prefix, shared fields, errors that name the variable."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from callkit.errors import ConfigError


class ServiceSettings(BaseSettings):
    """Fields every service has. Subclasses set ``env_prefix`` (``ASR_``, ``TTS_``, …) and a port.

    ``REDIS_URL``, ``LOG_LEVEL`` and ``LOG_FORMAT`` are shared by the whole stack, so they are
    read without the prefix.
    """

    model_config = SettingsConfigDict(
        extra="ignore", validate_default=True, frozen=True, populate_by_name=True
    )

    #: Human name of the service, used in logs and metrics.
    service_name: ClassVar[str] = "service"

    host: str = Field(
        "127.0.0.1", description="Interface to bind; compose sets 0.0.0.0 inside the network."
    )
    port: int = Field(8000, ge=1, le=65535, description="TCP port to listen on.")
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis connection URL (redis://, rediss:// or unix://).",
        pattern=r"^(redis|rediss|unix)://",
        validation_alias=AliasChoices("redis_url", "REDIS_URL"),
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO",
        description="Minimum log level.",
        validation_alias=AliasChoices("log_level", "LOG_LEVEL"),
    )
    log_format: Literal["json", "text"] = Field(
        "json",
        description="json for machines, text for a terminal.",
        validation_alias=AliasChoices("log_format", "LOG_FORMAT"),
    )

    @classmethod
    def load(cls, **overrides: Any) -> Self:
        """Build settings from the environment, turning validation errors into a ConfigError.

        The message names each offending environment variable, what it expected and what it got.
        """
        try:
            return cls(**overrides)
        except ValidationError as exc:
            raise ConfigError(cls.describe_errors(exc)) from None

    @classmethod
    def env_name(cls, field: str) -> str:
        info = cls.model_fields.get(field)
        alias = info.validation_alias if info else None
        if isinstance(alias, AliasChoices) and alias.choices:
            last = alias.choices[-1]
            return last if isinstance(last, str) else field.upper()
        if isinstance(alias, str):
            return alias
        prefix = cls.model_config.get("env_prefix") or ""
        return f"{prefix}{field}".upper()

    @classmethod
    def describe_errors(cls, exc: ValidationError) -> str:
        lines = [f"invalid {cls.service_name} configuration:"]
        for err in exc.errors():
            if not err["loc"]:  # a rule across fields: its message names the variables
                lines.append(f"  {err['msg'].removeprefix('Value error, ')}")
                continue
            field = str(err["loc"][0])
            got = err.get("input")
            shown = (
                "<secret>"
                if "secret" in field or "password" in field or "token" in field
                else repr(got)
            )
            lines.append(f"  {cls.env_name(field)}: {err['msg']} (got {shown})")
        return "\n".join(lines)


def prefixed_config(prefix: str) -> SettingsConfigDict:
    """The model_config a service's settings class uses: its prefix plus the shared defaults."""
    return SettingsConfigDict(
        env_prefix=prefix, extra="ignore", validate_default=True, frozen=True, populate_by_name=True
    )
