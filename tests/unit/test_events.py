"""Parsing wire events: every kind of bad message becomes a typed, recoverable error."""

from __future__ import annotations

from typing import Literal

import pytest

from callkit.errors import DependencyUnavailable, InvalidInput, PayloadTooLarge
from callkit.events import EventCodec, UnknownEventType, WireEvent, error_event


class SessionStart(WireEvent):
    type: Literal["session.start"] = "session.start"
    call_id: str
    sample_rate: Literal[8000, 16000] = 16000


class SessionClose(WireEvent):
    type: Literal["session.close"] = "session.close"


CODEC = EventCodec([SessionStart, SessionClose], max_bytes=256)


def test_valid_messages_parse_to_their_model() -> None:
    event = CODEC.parse('{"type":"session.start","call_id":"abc","sample_rate":8000}')
    assert isinstance(event, SessionStart)
    assert (event.call_id, event.sample_rate) == ("abc", 8000)
    assert isinstance(CODEC.parse(b'{"type":"session.close"}'), SessionClose)


@pytest.mark.parametrize(
    ("raw", "error", "code", "message"),
    [
        ("{not json", InvalidInput, "invalid_json", "not valid JSON"),
        ("[1, 2]", InvalidInput, "invalid_json", "expected a JSON object, got list"),
        ('{"call_id": "x"}', InvalidInput, "missing_type", "no string 'type'"),
        (
            '{"type": "session.explode"}',
            UnknownEventType,
            "unknown_event_type",
            "session.close, session.start",
        ),
        (
            '{"type": "session.start", "call_id": "x", "sample_rate": 44100}',
            InvalidInput,
            "invalid_event",
            "sample_rate",
        ),
        ('{"type": "session.start"}', InvalidInput, "invalid_event", "call_id: Field required"),
        (
            '{"type": "session.close", "pad": "' + "x" * 300 + '"}',
            PayloadTooLarge,
            "payload_too_large",
            "over the 256-byte limit",
        ),
        (b"\xff\xfe\x00", InvalidInput, "invalid_json", "not valid JSON"),
    ],
)
def test_bad_messages_raise_typed_errors(raw, error, code, message) -> None:
    with pytest.raises(error, match=message) as exc:
        CODEC.parse(raw)
    assert exc.value.code == code


def test_error_event_tells_the_client_whether_to_go_on() -> None:
    try:
        CODEC.parse("{")
    except InvalidInput as exc:
        event = error_event(exc)
    assert event["type"] == "error"
    assert event["code"] == "invalid_json"
    assert event["recoverable"] is True
    assert error_event(DependencyUnavailable("asr model not loaded"))["recoverable"] is True
    internal = error_event(RuntimeError("secret path /etc/x"))
    assert internal == {
        "type": "error",
        "code": "internal_error",
        "message": "internal error",
        "recoverable": False,
    }
