"""The shared contracts: real-shaped messages parse, bad ones are refused with a reason, versions."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel, ValidationError

from callkit.contracts import REGISTRY, asr, dialog, docs, live, load, outcome, streams, tts
from callkit.errors import InvalidInput
from callkit.events import ErrorEvent, UnknownEventType

ROOT = Path(__file__).resolve().parents[2]

# An outcome as the policy engine has written them since before the schema had a version.
WRITTEN = {
    "call_id": "7f3c2a9e-1b4d-4c51-9a0e-2f6d8b1c3e57",
    "direction": "inbound",
    "campaign_id": None,
    "caller": "+15551230000",
    "callee": "1000",
    "started_at": "2026-11-21T10:00:00+00:00",
    "ended_at": "2026-11-21T10:03:05+00:00",
    "duration_s": 185.2,
    "hangup_cause": "NORMAL_CLEARING",
    "final_state": "farewell",
    "status": "booked",
    "slots": {
        "client_name": "Jon Smith",
        "phone": "+15551230000",
        "age": 42,
        "weight_kg": 80.0,
        "symptoms": "knee pain",
        "symptoms_duration": "two weeks",
        "study_type": "MRI of the knee",
        "appointment_date": "2026-11-24",
        "appointment_time": "15:30",
        "price": 510.0,
        "currency": "USD",
        "video_conclusion": True,
        "discount": False,
    },
    "summary": "Booked MRI of the knee on 2026-11-24 at 15:30.",
    "transcript": [
        {"role": "agent", "text": "Hello, this is the clinic.", "t": 0.0, "interrupted": True},
        {"role": "caller", "text": "I'd like an MRI.", "t": 2.4},
    ],
    "latency": {},
}


def entry_of(data: dict[str, Any]) -> dict[bytes, bytes]:
    return {b"outcome": json.dumps(data).encode()}


# ---------------------------------------------------------------- outcome


def test_an_outcome_written_before_versions_parses_as_version_1() -> None:
    parsed = outcome.parse_entry(entry_of(WRITTEN))
    assert parsed.version == 1
    assert parsed.status == "booked"
    assert parsed.slots.model_dump()["discount"] is False  # script slots ride along
    assert parsed.transcript[0].interrupted
    assert not parsed.transcript[1].interrupted
    assert parsed.recording_path is None
    assert parsed.locale is None  # written before outcomes said their language
    assert parsed.latency.v2v_ms == []
    assert parsed.latency.v2v_p50_ms is None


def test_the_calls_language_rides_on_the_outcome_without_a_new_version() -> None:
    """An addition old readers may ignore: it keeps version 1, so a reader that predates it
    still takes the entry (keeping the language as an extra) instead of parking it."""
    fields = {
        k.encode(): v.encode()
        for k, v in outcome.entry(
            outcome.CallOutcome.model_validate(WRITTEN | {"locale": "ru"})
        ).items()
    }
    written = json.loads(fields[b"outcome"])
    assert (written["version"], written["locale"]) == (1, "ru")
    assert outcome.parse_entry(fields).locale == "ru"


def test_an_outcome_round_trips_with_its_recording_and_latency() -> None:
    built = outcome.CallOutcome.model_validate(
        WRITTEN
        | {
            "recording_path": "recordings/7f3c.wav",
            "latency": {"v2v_ms": [900, 700, 1500, 800], "barge_ins": 1, "barge_in_stop_ms": [740]},
        }
    )
    fields = {k.encode(): v.encode() for k, v in outcome.entry(built).items()}
    assert list(fields) == [b"outcome"]
    back = outcome.parse_entry(fields)
    assert back == built
    assert back.recording_path == "recordings/7f3c.wav"
    assert (back.latency.v2v_p50_ms, back.latency.v2v_p95_ms) == (800, 1500)
    assert json.loads(fields[b"outcome"])["latency"]["v2v_p95_ms"] == 1500  # for the console


def test_an_outcome_from_a_newer_schema_is_refused_not_guessed() -> None:
    with pytest.raises(InvalidInput) as caught:
        outcome.parse_entry(entry_of(WRITTEN | {"version": outcome.OUTCOME_VERSION + 1}))
    assert caught.value.code == "unmappable"
    assert "newer than this reader" in caught.value.message


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({b"data": b"{}"}, "entry has no 'outcome' field (fields: data)"),
        ({b"outcome": b"{not json"}, "outcome is not valid JSON"),
        ({b"outcome": b"[1, 2]"}, "outcome must be a JSON object, got list"),
        (entry_of(WRITTEN | {"status": "maybe"}), "status: Input should be 'booked'"),
        (entry_of({**WRITTEN, "slots": {"age": 400}}), "slots.age: Input should be less than"),
        (entry_of({k: v for k, v in WRITTEN.items() if k != "call_id"}), "call_id: Field required"),
        (
            entry_of(WRITTEN | {"transcript": [{"role": "robot", "text": "x", "t": 0}]}),
            "transcript.0.role",
        ),
    ],
)
def test_bad_entries_are_unmappable_with_the_reason(
    fields: dict[bytes, bytes], reason: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        outcome.parse_entry(fields)
    assert caught.value.code == "unmappable"
    assert reason in caught.value.message


def test_every_status_says_what_it_means() -> None:
    assert list(outcome.STATUSES) == list(get_args(outcome.Status))
    assert all(meaning.strip() for meaning in outcome.STATUSES.values())


# ---------------------------------------------------------------- dialog

ACCEPTED_EVENTS = [
    {"type": "call.started", "direction": "outbound", "caller": "1000", "callee": "+15551230000",
     "campaign_id": "c1", "contact": {"name": "Jon", "phone": "+15551230000"}, "locale": "en"},
    {"type": "call.started"},
    {"type": "user.utterance", "text": "hello", "segment_id": 3},
    {"type": "user.utterance", "text": "hello", "segment_id": "call:3:1200", "event_id": "e1"},
    {"type": "user.interrupted", "heard_text": "Hello, this is"},
    {"type": "user.interrupted", "heard_text": "", "utterance": {"text": "wait", "segment_id": 4}},
    {"type": "user.silence", "seconds": 5.5, "event_id": "silence-9000"},
    {"type": "dtmf", "digits": "12#"},
    {"type": "call.ended", "cause": "NORMAL_CLEARING", "event_id": "call.ended"},
    {"type": "call.ended"},
]  # fmt: skip


@pytest.mark.parametrize("event", ACCEPTED_EVENTS, ids=lambda e: str(e["type"]))
def test_the_events_the_dialog_accepted_stay_valid(event: dict[str, Any]) -> None:
    request = dialog.DialogRequest.model_validate({"session_id": "call-1", "event": event})
    assert request.event.type == event["type"]
    assert request.model_dump(mode="json", exclude_unset=True)["event"] == event


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ({"type": "user.utterance", "text": "x", "segment_id": 1, "mood": "?"}, "mood"),
        ({"type": "dtmf", "digits": "12x"}, "digits"),
        ({"type": "user.silence", "seconds": -1}, "seconds"),
        ({"type": "call.ended", "latency": {"barge_ins": -1}}, "barge_ins"),
        ({"text": "no type"}, "discriminator 'type'"),
    ],
)
def test_bad_dialog_events_are_refused(event: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        dialog.DialogRequest.model_validate({"session_id": "call-1", "event": event})
    assert problem in str(caught.value)


def test_call_ended_carries_the_recording_and_the_latency() -> None:
    sent = dialog.CallEnded(
        cause="NORMAL_CLEARING",
        recording_path="/var/lib/agent/recordings/call-1.wav",
        latency=outcome.CallLatency(v2v_ms=[850.0], barge_ins=1, barge_in_stop_ms=[720.0]),
    )
    body = dialog.DialogRequest(session_id="call-1", event=sent).model_dump(mode="json")
    received = dialog.DialogRequest.model_validate_json(json.dumps(body)).event
    assert isinstance(received, dialog.CallEnded)
    assert received.recording_path == sent.recording_path
    assert received.latency == sent.latency


def test_the_sse_stream_parses_with_the_models_that_wrote_it() -> None:
    reply = dialog.DialogReply(
        session_id="call-1",
        state="ask_name",
        replies=[dialog.ReplySentence(text="Hello.", cache_key="k1")],
        slots={"phone": "+15551230000"},
        actions=[{"type": "transfer", "target": "1001"}],
        status="transferred",
    )
    frames = [dialog.sse_frame(s) for s in reply.replies]
    frames.append(dialog.sse_frame(dialog.ReplyDone.model_validate(reply.model_dump())))
    frames.append(dialog.sse_frame(dialog.DialogError(code="x", message="y", recoverable=True)))
    parsed = []
    for frame in frames:
        kind_line, data_line = frame.decode().strip().split("\n")
        parsed.append(dialog.parse_sse(kind_line.removeprefix("event: "), data_line[6:]))
    sentence, done, error = parsed
    assert sentence == dialog.ReplySentence(text="Hello.", cache_key="k1")
    assert isinstance(done, dialog.ReplyDone)
    assert done.actions == [dialog.TransferAction(target="1001")]
    assert isinstance(error, dialog.DialogError)
    assert error.recoverable
    assert reply.model_dump(mode="json")["actions"] == [{"type": "transfer", "target": "1001"}]


def test_an_unknown_or_broken_sse_event_is_refused_with_the_reason() -> None:
    with pytest.raises(InvalidInput, match=re.escape("unknown dialog stream event 'reply.later'")):
        dialog.parse_sse("reply.later", "{}")
    with pytest.raises(InvalidInput, match=re.escape("actions.0.transfer.target: Field required")):
        dialog.parse_sse(
            "reply.done",
            '{"session_id": "s", "state": "x", "slots": {}, "actions": [{"type": "transfer"}]}',
        )


# ---------------------------------------------------------------- asr


def test_the_gateways_events_parse_with_the_bridges_codec() -> None:
    sent: list[BaseModel] = [
        asr.SessionCreated(
            session_id="s1", sample_rate=16000, language="en", model="whisper", end_silence_ms=500
        ),
        asr.SpeechStarted(t_ms=320),
        asr.TranscriptPartial(segment_id=1, text="I'd like", stable_text="I'd", t_ms=900),
        asr.SpeechEnded(t_ms=1800),
        asr.TranscriptFinal(
            segment_id=1,
            text="I'd like an MRI.",
            raw_text="i'd like an mri",
            start_ms=320,
            end_ms=1800,
            confidence=0.82,
            language="en",
        ),
        ErrorEvent(code="odd_frame", message="frame dropped", recoverable=True),
        asr.SessionClosed(session_id="s1"),
    ]
    for event in sent:
        assert asr.SERVER_EVENTS.parse(event.model_dump_json()) == event


def test_an_unknown_asr_event_names_the_known_ones() -> None:
    with pytest.raises(UnknownEventType, match=re.escape("transcript.final")):
        asr.SERVER_EVENTS.parse('{"type": "transcript.maybe"}')
    with pytest.raises(InvalidInput, match="confidence"):
        asr.SERVER_EVENTS.validate(
            {"type": "transcript.final", "segment_id": 1, "text": "x", "raw_text": "x",
             "start_ms": 0, "end_ms": 1, "confidence": 3, "language": "en"}
        )  # fmt: skip


# ---------------------------------------------------------------- live


def test_a_live_event_is_a_flat_entry_and_parses_back() -> None:
    event = live.BargeIn(call_id="call-1", t_ms=4200, heard_words=3, stop_ms=740.0)
    fields = live.entry(event)
    assert all(isinstance(v, str) for v in fields.values())
    assert fields["type"] == "barge_in"
    assert fields["t_ms"] == "4200"
    assert live.parse_entry({k.encode(): v.encode() for k, v in fields.items()}) == event
    state = live.StateChanged(call_id="call-1", from_state="greeting", to_state="ask_name")
    assert "t_ms" not in live.entry(state)  # absent, not "None"
    assert live.parse_entry(live.entry(state)) == state


def test_live_entries_this_reader_cannot_use_are_refused() -> None:
    with pytest.raises(UnknownEventType, match=re.escape("agent.sentence")):
        live.parse_entry({b"type": b"agent.mood", b"call_id": b"c"})
    with pytest.raises(InvalidInput, match="heard_words"):
        live.parse_entry({b"type": b"barge_in", b"call_id": b"c", b"heard_words": b"many"})
    with pytest.raises(InvalidInput, match="newer than this reader"):
        live.parse_entry({"type": "caller.final", "call_id": "c", "text": "hi", "version": "9"})


# ---------------------------------------------------------------- tts


def test_a_synthesis_request_defaults_to_wideband_pcm_and_refuses_what_no_call_plays() -> None:
    request = tts.SynthesizeRequest.model_validate({"text": "Hello."})
    assert (request.sample_rate, request.format, request.speed, request.voice) == (
        16000,
        "pcm_s16le",
        1.0,
        None,
    )
    for bad, problem in (
        ({"sample_rate": 44100}, "sample_rate"),
        ({"format": "mp3"}, "format"),
        ({"speed": 3.0}, "speed"),
        ({"pitch": 2}, "pitch"),
    ):
        with pytest.raises(ValidationError, match=problem):
            tts.SynthesizeRequest.model_validate({"text": "Hello."} | bad)


# ---------------------------------------------------------------- bridge load


def test_a_bridges_load_reads_back_as_the_bridge_wrote_it() -> None:
    written = load.BridgeLoad(active=3, max=1).value()  # over its limit: a limit that dropped
    assert json.loads(written) == {"active": 3, "max": 1}
    assert load.parse_value(written.encode()) == load.BridgeLoad(active=3, max=1)
    assert load.load_key("bridge-a") == "bridge:bridge-a:load"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[1, 4]",
        b'{"active": 1}',
        b'{"active": "one", "max": 4}',
        b'{"active": -1, "max": 4}',
        b'{"active": 1, "max": null}',
    ],
)
def test_a_value_that_is_not_a_bridges_load_is_skipped(raw: bytes) -> None:
    assert load.parse_value(raw) is None


# ---------------------------------------------------------------- registry and docs


def test_the_registry_lists_every_contract_model() -> None:
    for module in (outcome, dialog, asr, live, tts, load):
        defined = {
            obj
            for _, obj in inspect.getmembers(module, inspect.isclass)
            if issubclass(obj, BaseModel)
            and obj.__module__ == module.__name__
            and not obj.__name__.startswith("_")
            and obj is not live.LiveEvent
        }
        assert defined <= set(REGISTRY[module.__name__]), module.__name__


def test_the_docs_list_the_contracts_as_the_models_define_them() -> None:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    assert docs.render() in text, "run: python -m callkit.contracts.docs"
    for name in ("CallOutcome", "CallEnded", "TranscriptFinal", "BargeIn", streams.CALLS_EVENTS):
        assert name in docs.render()


def test_the_docs_check_fails_on_a_stale_section(tmp_path: Path) -> None:
    doc = tmp_path / "ARCHITECTURE.md"
    doc.write_text(f"# A\n\n{docs.BEGIN}\nold\n{docs.END}\n", encoding="utf-8")
    assert docs.main([str(doc), "--check"]) == 1
    assert docs.main([str(doc)]) == 0
    assert docs.main([str(doc), "--check"]) == 0
    assert docs.render() in doc.read_text(encoding="utf-8")
