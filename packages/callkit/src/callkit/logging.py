"""JSON logging with redaction: caller numbers, transcripts and DTMF never reach a log line.

Services log facts with structured fields (``log.info("call.started", extra={"call_id": c,
"caller": number})``). Fields named in :data:`PII_FIELDS` are replaced by a keyed hash, so
lines about one caller can still be correlated without revealing who it was; every string
that does reach the output (messages, other fields, exception text) is also scrubbed for
phone-number-like digit runs, as a second line of defence against a message built with an
f-string, and for pydantic's echo of a rejected input (``input_value=...``).

Libraries that log what goes over the wire at DEBUG (websockets' frames and handshake headers,
whether through its own loggers or uvicorn's) are kept out: those lines hold transcripts, call
metadata and credentials in free text that no field name can mark.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import sys
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

#: Structured field names whose values are personal data (or secrets). Matched
#: case-insensitively, at any depth of a nested value.
PII_FIELDS = frozenset(
    {
        "phone",
        "phone_number",
        "caller",
        "callee",
        "caller_id",
        "caller_number",
        "callee_number",
        "contact",
        "from_number",
        "to_number",
        "ani",
        "dnis",
        "text",
        "raw_text",
        "transcript",
        "utterance",
        "heard_text",
        "stable_text",
        "prompt",
        "reply",
        "sentence",
        "digits",
        "dtmf",
        "name",
        "client_name",
        "full_name",
        "address",
        "email",
        "slots",
        "messages",
        # the outcome's slots and transcript, and chat messages, when logged one by one
        "symptoms",
        "symptoms_duration",
        "age",
        "weight_kg",
        "pain_character",
        "content",
        "text_content",
        "outcome",
        "summary",
        "metadata",
        # credentials are not personal data, but no more belong in a log line
        "password",
        "api_key",
        "authorization",
        "token",
    }
)

# A run of 7+ digits, allowing the separators people and ASR put in numbers
# ("+1 (555) 123-4567", "555.123.4567", "5551234567").
_PHONE_RE = re.compile(r"(?<![\w])\+?\d(?:[\s().-]{0,2}\d){6,}(?![\w])")

# pydantic's ValidationError text repeats the rejected input: "input_value='my name is …'".
_INPUT_VALUE_RE = re.compile(r"input_value=.*?, input_type=")

# Loggers whose DEBUG lines are wire traffic; held at WARNING so those lines are not even built.
_WIRE_LOGGERS = ("websockets", "httpx", "httpx2", "httpcore", "httpcore2", "hpack")

_STANDARD_ATTRS = frozenset(logging.LogRecord("x", 0, "x", 0, "x", None, None).__dict__.keys()) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


class Redactor:
    """Replaces personal data by a stable, keyed, non-reversible tag."""

    def __init__(self, key: bytes | None = None) -> None:
        # A per-process random key unless one is configured: tags then correlate within one
        # process's logs only, which is the safe default.
        self._key = key or secrets.token_bytes(32)

    def tag(self, value: object) -> str:
        digest = hmac.new(self._key, str(value).encode("utf-8"), hashlib.sha256).hexdigest()
        return f"<redacted:{digest[:10]}>"

    def scrub_text(self, text: str) -> str:
        text = _INPUT_VALUE_RE.sub("input_value=<redacted>, input_type=", text)
        return _PHONE_RE.sub("<redacted:number>", text)

    def field(self, key: str, value: Any) -> Any:
        if key.lower() in PII_FIELDS and value not in (None, ""):
            return self.tag(value)
        return self.value(value)

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, Mapping):
            return {str(k): self.field(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        if value is None or isinstance(value, bool | int | float):
            return value
        return self.scrub_text(str(value))


class WireTrafficFilter(logging.Filter):
    """Drops websockets' DEBUG lines (frames, handshake headers) whichever logger carries them.

    uvicorn hands its WebSocket connections the ``uvicorn.error`` logger, so a level on the
    ``websockets`` loggers alone does not keep the server side's frames out.
    """

    _MARK = f"{os.sep}websockets{os.sep}"

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG or self._MARK not in record.pathname


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, service, then the structured fields."""

    def __init__(self, redactor: Redactor, service: str | None = None) -> None:
        super().__init__()
        self._redactor = redactor
        self._service = service

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        return {
            k: self._redactor.field(k, v)
            for k, v in record.__dict__.items()
            if k not in _STANDARD_ATTRS and not k.startswith("_")
        }

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": self._redactor.scrub_text(record.getMessage()),
        }
        if self._service:
            entry["service"] = self._service
        entry.update(self.fields(record))
        if record.exc_info and record.exc_info[0] is not None:
            text = "".join(traceback.format_exception(*record.exc_info))
            entry["exc"] = self._redactor.scrub_text(text)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(JsonFormatter):
    """Human-readable lines for a terminal, with the same redaction as JSON."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S.%f")[:-3]
        fields = " ".join(f"{k}={v}" for k, v in self.fields(record).items())
        line = f"{ts} {record.levelname:<7} {record.name}: {self._redactor.scrub_text(record.getMessage())}"
        if fields:
            line += f" {fields}"
        if record.exc_info and record.exc_info[0] is not None:
            line += "\n" + self._redactor.scrub_text(
                "".join(traceback.format_exception(*record.exc_info))
            )
        return line


def configure_logging(
    level: str = "INFO",
    fmt: Literal["json", "text"] = "json",
    service: str | None = None,
    stream: Any = None,
) -> Redactor:
    """Route every logger (ours, uvicorn's, libraries') through one redacting handler."""
    key = os.environ.get("LOG_REDACTION_KEY")
    redactor = Redactor(key.encode() if key else None)
    formatter: logging.Formatter = (
        JsonFormatter(redactor, service) if fmt == "json" else TextFormatter(redactor, service)
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(WireTrafficFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    # HTTP clients log every request at INFO: one line per TTS sentence and LLM probe drowns
    # what matters; at DEBUG they and websockets log headers and frames. Warnings still show.
    for name in _WIRE_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    return redactor
