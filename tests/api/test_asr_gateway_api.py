"""The ASR gateway's two edges on a tone recognizer: the streaming session and the file route."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from fakes import PHRASES, EnergyVad, ToneRecognizer, silence, tone
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from asr_gateway.app import create_app
from asr_gateway.settings import AsrSettings
from callkit.audio import wav_header

FRAME = 640  # 20 ms of 16 kHz L16


def send_audio(ws: WebSocketTestSession, samples: npt.NDArray[np.int16]) -> None:
    data = samples.astype("<i2").tobytes()
    for i in range(0, len(data), FRAME):
        ws.send_bytes(data[i : i + FRAME])


def events_until(ws: WebSocketTestSession, kind: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while True:
        event = ws.receive_json()
        events.append(event)
        if event["type"] == kind:
            return events


def start(ws: WebSocketTestSession, **fields: Any) -> dict[str, Any]:
    ws.send_text(json.dumps({"type": "session.start", "call_id": "call-1", **fields}))
    created: dict[str, Any] = ws.receive_json()
    return created


def test_a_caller_sentence_becomes_one_final_after_the_end_silence(
    asr: FastAPI, recognizer: ToneRecognizer
) -> None:
    with TestClient(asr) as client, client.websocket_connect("/ws/transcribe") as ws:
        created = start(ws, hotwords=["ultrasound"])
        assert created["type"] == "session.created"
        assert created["model"] == "tone-recognizer"
        assert created["end_silence_ms"] == 400
        send_audio(ws, silence(300))
        send_audio(ws, tone(440, 1500))
        send_audio(ws, silence(800))
        events = events_until(ws, "transcript.final")
        ws.send_text(json.dumps({"type": "session.close"}))
        closing = events_until(ws, "session.closed")
    kinds = [e["type"] for e in events]
    assert kinds[0] == "vad.speech_start"
    assert kinds.index("vad.speech_start") < kinds.index("vad.speech_end") < len(kinds) - 1
    final = events[-1]
    assert final["text"] == PHRASES[440]
    assert final["segment_id"] == 1
    # The utterance spans the tone (300-1800 ms), within the VAD's frame granularity.
    assert 250 <= final["start_ms"] <= 350
    assert 1750 <= final["end_ms"] <= 1900
    partials = [e for e in events if e["type"] == "transcript.partial"]
    assert all(PHRASES[440].startswith(p["text"]) for p in partials)
    assert [e["type"] for e in closing] == ["session.closed"]
    finals = [h for h in recognizer.heard if h.with_timestamps]
    assert len(finals) == 1, "one final, decoded as offline transcription is"
    assert finals[0].hotwords == ["ultrasound"]
    assert finals[0].language == "en"


def test_two_sentences_come_back_in_order_with_their_own_segments(asr: FastAPI) -> None:
    with TestClient(asr) as client, client.websocket_connect("/ws/transcribe") as ws:
        start(ws, partials=False)
        send_audio(ws, tone(660, 1200))
        send_audio(ws, silence(700))
        send_audio(ws, tone(880, 600))
        send_audio(ws, silence(700))
        ws.send_text(json.dumps({"type": "session.close"}))
        events = events_until(ws, "session.closed")
    finals = [e for e in events if e["type"] == "transcript.final"]
    assert [(f["segment_id"], f["text"]) for f in finals] == [(1, PHRASES[660]), (2, PHRASES[880])]
    assert not [e for e in events if e["type"] == "transcript.partial"]


def test_closing_mid_sentence_still_delivers_its_final(asr: FastAPI) -> None:
    with TestClient(asr) as client, client.websocket_connect("/ws/transcribe") as ws:
        start(ws, partials=False)
        send_audio(ws, tone(880, 900))
        ws.send_text(json.dumps({"type": "session.close"}))
        events = events_until(ws, "session.closed")
    finals = [e["text"] for e in events if e["type"] == "transcript.final"]
    assert finals == [PHRASES[880]]


def test_silence_yields_no_transcript(asr: FastAPI, recognizer: ToneRecognizer) -> None:
    with TestClient(asr) as client, client.websocket_connect("/ws/transcribe") as ws:
        start(ws)
        send_audio(ws, silence(2000))
        ws.send_text(json.dumps({"type": "session.close"}))
        events = events_until(ws, "session.closed")
    assert [e["type"] for e in events] == ["session.closed"]
    assert recognizer.heard == []


def test_audio_before_session_start_is_refused(asr: FastAPI) -> None:
    with TestClient(asr) as client, client.websocket_connect("/ws/transcribe") as ws:
        ws.send_bytes(bytes(FRAME))
        error = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert error["code"] == "expected_session_start"
    assert error["recoverable"] is False
    assert closed.value.code == 1008


def test_a_session_over_the_limit_is_told_to_retry(recognizer: ToneRecognizer) -> None:
    app = create_app(
        AsrSettings.load(model="whisper-tiny.en", max_sessions=1),
        load_engine=lambda _s, _m: recognizer,
        load_vad=lambda _s, _m: EnergyVad(),
    )
    with TestClient(app) as client, client.websocket_connect("/ws/transcribe") as first:
        start(first)
        with client.websocket_connect("/ws/transcribe") as second:
            refused = second.receive_json()
            with pytest.raises(WebSocketDisconnect) as closed:
                second.receive_json()
        assert "asr_sessions_refused_total 1.0" in client.get("/metrics").text
    assert refused["code"] == "too_many_sessions"
    assert refused["recoverable"] is True
    assert closed.value.code == 1013


def wav(samples: npt.NDArray[np.int16], rate: int = 16000) -> bytes:
    pcm = samples.astype("<i2").tobytes()
    return wav_header(rate, 1, len(pcm)) + pcm


def test_a_wav_file_is_transcribed_as_openai_does(asr: FastAPI) -> None:
    audio = wav(tone(660, 1000))
    with TestClient(asr) as client:
        plain = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("call.wav", audio, "audio/wav")},
            data={"model": "whisper-1"},
        )
        srt = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("call.wav", audio, "audio/wav")},
            data={"model": "whisper-1", "response_format": "srt"},
        )
    assert plain.status_code == 200
    assert plain.json() == {"text": PHRASES[660]}
    assert srt.text == f"1\n00:00:00,000 --> 00:00:01,000\n{PHRASES[660]}\n"


def test_a_file_that_is_not_audio_is_refused_with_the_reason(asr: FastAPI) -> None:
    with TestClient(asr) as client:
        reply = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("notes.txt", b"not audio at all", "text/plain")},
        )
    assert reply.status_code == 415
    assert reply.json()["error"]["message"].startswith("could not decode the audio file")
