"""ESL framing as mod_event_socket writes and reads it.

A message is a header block ended by an empty line, then exactly Content-Length body bytes; inside
a text/event-plain body every event header value is URL-encoded.
"""

from __future__ import annotations

import pytest

from callkit import esl
from callkit.errors import InvalidInput

JOB = "9a2e0d4c-0000-4000-8000-000000000001"
LEG = "2c1f5b9e-6c43-4f5e-9a6e-0f5d8b6f7a11"


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("mod_audio_fork::play_audio", "mod_audio_fork%3A%3Aplay_audio"),
        ("Hello World", "Hello%20World"),
        ("a+b", "a%2Bb"),
        ("sofia/gateway/carrier/15551234567", "sofia/gateway/carrier/15551234567"),
        ("{origination_uuid=x}", "%7Borigination_uuid%3Dx%7D"),
        ("&park()", "%26park()"),
        ("Лист", "%D0%9B%D0%B8%D1%81%D1%82"),
        ("tab\there", "tab%09here"),
    ],
)
def test_event_header_values_are_url_encoded_like_switch_url_encode(raw: str, encoded: str) -> None:
    assert esl.url_encode(raw) == encoded
    assert esl.url_decode(encoded) == raw


def test_the_reference_inbound_session_parses_from_any_chunking() -> None:
    arg = (
        f"{{origination_uuid={LEG},originate_timeout=30}}sofia/gateway/carrier/15551234567 &park()"
    )
    event = esl.event_message(
        [
            ("Event-Name", "BACKGROUND_JOB"),
            ("Job-UUID", JOB),
            ("Job-Command", "originate"),
            ("Job-Command-Arg", arg),
        ],
        f"+OK {LEG}\n",
    )
    stream = (
        esl.auth_request()
        + esl.command_reply("+OK accepted")
        + esl.api_response("+OK Success\n")
        + esl.command_reply(f"+OK Job-UUID: {JOB}", [("Job-UUID", JOB)])
        + event
        + esl.command_reply("+OK bye")
        + esl.disconnect_notice()
    )
    for size in (1, 7, 64, len(stream)):
        reader = esl.MessageReader()
        messages = [m for piece in chunks(stream, size) for m in reader.feed(piece)]
        kinds = [m.content_type for m in messages]
        assert kinds == [
            "auth/request",
            "command/reply",
            "api/response",
            "command/reply",
            "text/event-plain",
            "command/reply",
            "text/disconnect-notice",
        ]
        assert messages[1].reply_text == "+OK accepted"
        assert messages[2].body == b"+OK Success\n"
        assert messages[2].get("Content-Length") == "12"
        assert messages[3].get("Job-UUID") == JOB
        parsed = esl.parse_event(messages[4])
        assert parsed.name == "BACKGROUND_JOB"
        assert parsed.get("Job-Command-Arg") == arg
        assert parsed.body == f"+OK {LEG}\n"
        assert messages[6].body.decode() == esl.DISCONNECT_TEXT
        assert messages[6].get("Content-Length") == "67"


def test_event_messages_put_content_length_first_and_encode_inside() -> None:
    raw = esl.event_message(
        [
            ("Event-Name", "CUSTOM"),
            ("Event-Subclass", "mod_audio_fork::connect"),
            ("Caller-Caller-ID-Name", ""),
        ]
    )
    head, _, inner = raw.partition(b"\n\n")
    assert head.split(b"\n") == [
        f"Content-Length: {len(inner)}".encode(),
        b"Content-Type: text/event-plain",
    ]
    assert inner == (
        b"Event-Name: CUSTOM\nEvent-Subclass: mod_audio_fork%3A%3Aconnect\n"
        b"Caller-Caller-ID-Name: _undef_\n\n"
    )


def test_json_events_round_trip() -> None:
    raw = esl.event_message([("Event-Name", "DTMF"), ("DTMF-Digit", "5")], "body text", fmt="json")
    message = esl.MessageReader().feed(raw)[0]
    assert message.content_type == "text/event-json"
    event = esl.parse_event(message)
    assert (event.name, event.get("DTMF-Digit"), event.body) == ("DTMF", "5", "body text")


def test_commands_are_read_with_headers_and_bodies_across_chunks() -> None:
    data = (
        b"\n\nauth ClueCon\n\n"  # leading blank lines are skipped
        b"bgapi originate sofia/gateway/x/1 &park()\r\nJob-UUID: " + JOB.encode() + b"\r\n\r\n"
        b"sendmsg " + LEG.encode() + b"\ncall-command: execute\nexecute-app-name: playback\n"
        b"execute-app-arg: /tmp/a.wav\n\n"
        b"sendevent CUSTOM\nContent-Length: 5\n\nhello"
    )
    for size in (1, 5, len(data)):
        reader = esl.CommandReader()
        commands = [c for piece in chunks(data, size) for c in reader.feed(piece)]
        assert [c.name for c in commands] == ["auth", "bgapi", "sendmsg", "sendevent"]
        assert commands[0].args == "ClueCon"
        assert commands[1].args == "originate sofia/gateway/x/1 &park()"
        assert commands[1].get("Job-UUID") == JOB
        assert commands[2].get("execute-app-arg") == "/tmp/a.wav"
        assert commands[3].body == b"hello"


def test_an_oversized_body_drops_the_connection() -> None:
    with pytest.raises(esl.EslProtocolError, match="outside 0"):
        esl.CommandReader().feed(b"sendevent CUSTOM\nContent-Length: 20000000\n\n")
    with pytest.raises(esl.EslProtocolError, match="not a number"):
        esl.CommandReader().feed(b"sendevent CUSTOM\nContent-Length: lots\n\n")


def test_client_commands_are_framed() -> None:
    assert esl.command("api status") == b"api status\n\n"
    assert (
        esl.command("bgapi status", [("Job-UUID", JOB)])
        == f"bgapi status\nJob-UUID: {JOB}\n\n".encode()
    )
    assert (
        esl.command("sendevent CUSTOM", body=b"hi") == b"sendevent CUSTOM\nContent-Length: 2\n\nhi"
    )
    with pytest.raises(InvalidInput, match="line break"):
        esl.command("api status\n\nexit")
