"""Caller numbers, transcripts and digits never reach a log line, in any format."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from callkit.logging import configure_logging

PHONE = "+1 (555) 123-4567"
TRANSCRIPT = "my name is Jon Smith and I have a sharp pain in my knee"


@pytest.fixture
def capture() -> Iterator[tuple[io.StringIO, str]]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield stream, "json"
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def lines(stream: io.StringIO) -> list[str]:
    return [ln for ln in stream.getvalue().splitlines() if ln.strip()]


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_pii_fields_are_replaced_by_a_correlatable_tag(capture, fmt) -> None:
    stream, _ = capture
    configure_logging("INFO", fmt, service="test", stream=stream)
    log = logging.getLogger("test.pii")
    log.info("call.started", extra={"call_id": "c-1", "caller": PHONE, "transcript": TRANSCRIPT})
    log.info("dtmf", extra={"call_id": "c-1", "digits": "4321", "caller": PHONE})
    out = stream.getvalue()
    assert "555" not in out
    assert "Jon" not in out
    assert "knee" not in out
    assert "4321" not in out
    assert "c-1" in out  # non-personal fields stay readable
    if fmt == "json":
        first, second = (json.loads(line) for line in lines(stream))
        assert first["caller"].startswith("<redacted:")
        assert first["caller"] == second["caller"]  # same caller, same tag: lines still correlate


def test_phone_numbers_in_message_strings_are_scrubbed(capture) -> None:
    stream, _ = capture
    configure_logging("INFO", "json", stream=stream)
    number = "5551234567"
    logging.getLogger("test.msg").warning("dialing %s failed", number)
    logging.getLogger("test.msg").warning(f"callback requested on 555.123.4567 at {12}")  # noqa: G004
    out = stream.getvalue()
    assert "5551234567" not in out
    assert "555.123.4567" not in out
    assert "<redacted:number>" in out
    assert "at 12" in out  # short numbers (times, counts) are left alone


def test_nested_structures_and_exceptions_are_redacted(capture) -> None:
    stream, _ = capture
    configure_logging("INFO", "json", stream=stream)
    try:
        raise ValueError("could not parse phone 555 123 4567")
    except ValueError:
        logging.getLogger("test.exc").exception(
            "extraction failed", extra={"event": {"type": "user.utterance", "text": TRANSCRIPT}}
        )
    record = json.loads(lines(stream)[0])
    assert record["event"]["type"] == "user.utterance"
    assert record["event"]["text"].startswith("<redacted:")
    assert "555 123 4567" not in record["exc"]
    assert "ValueError" in record["exc"]


def test_library_loggers_go_through_the_same_redaction(capture) -> None:
    stream, _ = capture
    configure_logging("INFO", "json", stream=stream)
    logging.getLogger("uvicorn.error").info("client said %s", "call me at 555-123-4567")
    record = json.loads(lines(stream)[0])
    assert record["logger"] == "uvicorn.error"
    assert "555-123-4567" not in record["msg"]


def test_level_filters_lower_records(capture) -> None:
    stream, _ = capture
    configure_logging("WARNING", "json", stream=stream)
    logging.getLogger("test.lvl").info("hidden")
    logging.getLogger("test.lvl").warning("shown")
    assert [json.loads(line)["msg"] for line in lines(stream)] == ["shown"]


def test_outcome_and_chat_fields_are_redacted_at_any_depth(capture) -> None:
    stream, _ = capture
    configure_logging("DEBUG", "json", stream=stream)
    logging.getLogger("test.nested").debug(
        "turn",
        extra={
            "call_id": "c-2",
            "turn": {"symptoms": "sharp pain in my knee", "age": 45, "study_type": "MRI"},
            "request": {"messages": [{"role": "user", "content": TRANSCRIPT}]},
            "history": [{"role": "caller", "content": "Jon Smith"}],
        },
    )
    out = stream.getvalue()
    assert "knee" not in out
    assert "Jon" not in out
    record = json.loads(lines(stream)[0])
    assert record["turn"]["symptoms"].startswith("<redacted:")
    assert record["turn"]["age"].startswith("<redacted:")
    assert record["turn"]["study_type"] == "MRI"  # a catalogue name, not the caller's
    assert record["request"]["messages"].startswith("<redacted:")
    assert record["history"][0]["content"].startswith("<redacted:")
    assert record["history"][0]["role"] == "caller"


def test_a_validation_error_does_not_repeat_the_rejected_input(capture) -> None:
    from pydantic import BaseModel, ValidationError

    class Utterance(BaseModel):
        confidence: float

    stream, _ = capture
    configure_logging("INFO", "json", stream=stream)
    try:
        Utterance.model_validate({"confidence": TRANSCRIPT})
    except ValidationError as exc:
        logging.getLogger("test.val").exception("bad event", extra={"error": str(exc)})
    out = stream.getvalue()
    assert "Jon" not in out
    record = json.loads(lines(stream)[0])
    assert "input_value=<redacted>" in record["exc"]
    assert "confidence" in record["error"]  # which field was wrong stays readable
    assert "input_value=<redacted>" in record["error"]


@pytest.mark.parametrize("logger", ["websockets.client", "uvicorn.error"])
def test_websocket_frames_at_debug_never_reach_the_log(capture, logger) -> None:
    """uvicorn hands websockets its own logger, so its frames come under uvicorn.error."""
    from websockets.client import ClientProtocol
    from websockets.protocol import State
    from websockets.uri import parse_uri

    stream, _ = capture
    configure_logging("DEBUG", "json", stream=stream)
    ws = ClientProtocol(parse_uri("ws://127.0.0.1/ws"), logger=logging.getLogger(logger))
    ws.state = State.OPEN
    ws.send_text(json.dumps({"type": "transcript.final", "text": "Jon"}).encode())
    logging.getLogger("test.ws").debug("after the frame")
    out = stream.getvalue()
    assert "Jon" not in out
    assert "TEXT" not in out
    assert [json.loads(line)["msg"] for line in lines(stream)][-1] == "after the frame"
