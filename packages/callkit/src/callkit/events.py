"""Wire events: every JSON message has a ``type``; parsing fails with a clear, typed error.

Services declare their messages as pydantic models with a ``type`` literal and parse incoming
text with an :class:`EventCodec`, which turns invalid JSON, oversized messages, a missing or
unknown ``type`` and invalid fields into :class:`InvalidInput` errors whose ``code`` tells
them apart. The socket stays open: the caller answers with :func:`error_event` and goes on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from callkit.errors import AgentError, InvalidInput, PayloadTooLarge

E = TypeVar("E", bound=BaseModel)

#: Largest JSON control message any service accepts, in bytes.
MAX_JSON_MESSAGE_BYTES = 64 * 1024


class WireEvent(BaseModel):
    """Base of every JSON message on a socket or stream."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    type: str


class ErrorEvent(WireEvent):
    """A failure told to the other side; ``recoverable``: the connection or session goes on."""

    type: Literal["error"] = "error"
    code: str
    message: str
    recoverable: bool


class UnknownEventType(InvalidInput):
    code = "unknown_event_type"


def validation_problems(exc: ValidationError) -> str:
    """Every problem of a validation error as ``field.path: message``, joined by ``; ``."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()
    )


class EventCodec(Generic[E]):
    """Parses JSON text into one of a fixed set of event models, chosen by ``type``."""

    def __init__(
        self, models: Iterable[type[E]], *, max_bytes: int = MAX_JSON_MESSAGE_BYTES
    ) -> None:
        self.models: dict[str, type[E]] = {}
        for model in models:
            literal = model.model_fields["type"].default
            if not isinstance(literal, str):
                raise TypeError(f"{model.__name__}.type needs a string default naming the event")
            self.models[literal] = model
        self.max_bytes = max_bytes

    def parse(self, raw: str | bytes) -> E:
        size = len(raw.encode("utf-8")) if isinstance(raw, str) else len(raw)
        if size > self.max_bytes:
            raise PayloadTooLarge(
                f"JSON message of {size} bytes is over the {self.max_bytes}-byte limit"
            )
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"message is not valid JSON: {exc}", code="invalid_json") from None
        except RecursionError:
            # Small enough to pass the size limit, nested deeper than the parser goes.
            raise InvalidInput(
                "message is not valid JSON: nested too deeply", code="invalid_json"
            ) from None
        return self.validate(data)

    def validate(self, data: Any) -> E:
        """The event for already decoded JSON (a producer checking what it is about to send)."""
        if not isinstance(data, dict):
            raise InvalidInput(
                f"expected a JSON object, got {type(data).__name__}", code="invalid_json"
            )
        kind = data.get("type")
        if not isinstance(kind, str):
            raise InvalidInput("message has no string 'type' field", code="missing_type")
        model = self.models.get(kind)
        if model is None:
            known = ", ".join(sorted(self.models))
            raise UnknownEventType(f"unknown event type {kind!r}; expected one of: {known}")
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise InvalidInput(
                f"invalid {kind!r} message: {validation_problems(exc)}", code="invalid_event"
            ) from None


def error_for(exc: BaseException, *, recoverable: bool | None = None) -> ErrorEvent:
    """The ``error`` event sent back for a failure; never includes the offending input."""
    if isinstance(exc, AgentError):
        code, message = exc.code, exc.message
        default_recoverable = isinstance(exc, InvalidInput) or exc.retryable
    else:
        code, message, default_recoverable = "internal_error", "internal error", False
    return ErrorEvent(
        code=code,
        message=message,
        recoverable=default_recoverable if recoverable is None else recoverable,
    )


def error_event(exc: BaseException, *, recoverable: bool | None = None) -> dict[str, Any]:
    """:func:`error_for` as the JSON-ready dict a socket sends."""
    return error_for(exc, recoverable=recoverable).model_dump()
