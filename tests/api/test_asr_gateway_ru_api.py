"""A Russian call through the ASR gateway's edges on a tone recognizer: the session's language
reaches the recognizer, Russian finals come back with digits, and a model that cannot decode
Russian refuses the session rather than hearing it as English."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fakes import EnergyVad, ToneRecognizer, silence, tone
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from test_asr_gateway_api import events_until, send_audio, start, wav

from asr_gateway.app import create_app
from asr_gateway.settings import AsrSettings
from callkit.errors import ConfigError

RUSSIAN = {
    440: "Мне сорок пять лет, вес восемьдесят два килограмма.",
    660: "Мой номер девять один шесть сто двадцать три сорок пять шестьдесят семь.",
    880: "Я звоню в Рума насчёт эм эр тэ.",
}


def gateway(recognizer: ToneRecognizer, **settings: object) -> FastAPI:
    return create_app(
        AsrSettings.load(end_silence_ms=400, early_finals=False, **settings),
        load_engine=lambda _s, _m: recognizer,
        load_vad=lambda _s, _m: EnergyVad(),
    )


def test_a_russian_session_is_decoded_and_written_in_russian() -> None:
    recognizer = ToneRecognizer(RUSSIAN)
    with (
        TestClient(gateway(recognizer, model="whisper-base")) as client,
        client.websocket_connect("/ws/transcribe") as ws,
    ):
        created = start(ws, language="ru", hotwords=["Сидоров"], partials=False)
        finals = []
        for hz in (440, 660, 880):
            send_audio(ws, tone(hz, 1200))
            send_audio(ws, silence(700))
            finals.append(events_until(ws, "transcript.final")[-1])
        ws.send_text(json.dumps({"type": "session.close"}))
        events_until(ws, "session.closed")
    assert created["language"] == "ru"
    assert [f["text"] for f in finals] == [
        "Мне 45 лет, вес 82 кг.",
        "Мой номер +7 916 123-45-67.",
        "Я звоню в РУМА насчёт МРТ.",
    ]
    assert finals[0]["raw_text"] == RUSSIAN[440]
    assert {f["language"] for f in finals} == {"ru"}
    assert {h.language for h in recognizer.heard} == {"ru"}
    # The session's own hot words reach the decoder; the language's vocabulary only corrects.
    assert {tuple(h.hotwords) for h in recognizer.heard} == {("Сидоров",)}


def test_an_english_only_model_refuses_a_russian_session() -> None:
    recognizer = ToneRecognizer(RUSSIAN)
    with (
        TestClient(gateway(recognizer, model="whisper-tiny.en")) as client,
        client.websocket_connect("/ws/transcribe") as ws,
    ):
        ws.send_text(json.dumps({"type": "session.start", "language": "ru"}))
        error = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert error["code"] == "unsupported_language"
    assert error["recoverable"] is False
    assert "whisper-base" in error["message"]
    assert closed.value.code == 1008
    assert recognizer.heard == []


def switch_to_russian_then_speak(
    recognizer: ToneRecognizer, model: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An English session asks for Russian, then says one sentence: (the answer, the final)."""
    with (
        TestClient(gateway(recognizer, model=model)) as client,
        client.websocket_connect("/ws/transcribe") as ws,
    ):
        start(ws, partials=False)
        ws.send_text(json.dumps({"type": "session.configure", "language": "ru"}))
        answer: dict[str, Any] = ws.receive_json()
        send_audio(ws, tone(440, 1200))
        send_audio(ws, silence(700))
        return answer, events_until(ws, "transcript.final")[-1]


def test_switching_an_english_only_session_to_russian_is_refused_and_it_stays_english() -> None:
    recognizer = ToneRecognizer({440: "my name is Anna"})
    error, final = switch_to_russian_then_speak(recognizer, "whisper-tiny.en")
    assert error["code"] == "unsupported_language"
    assert error["recoverable"] is True
    assert final["text"] == "my name is Anna"
    assert {h.language for h in recognizer.heard} == {"en"}


def test_a_session_switched_to_russian_gets_russian_numbers() -> None:
    recognizer = ToneRecognizer(RUSSIAN)
    updated, final = switch_to_russian_then_speak(recognizer, "whisper-base")
    assert updated["type"] == "session.updated"
    assert updated["language"] == "ru"
    assert final["text"] == "Мне 45 лет, вес 82 кг."
    assert recognizer.heard[-1].language == "ru"


def test_a_default_language_the_model_cannot_decode_stops_start_up() -> None:
    with pytest.raises(ConfigError, match="ASR_LANGUAGE=ru"):
        gateway(ToneRecognizer(RUSSIAN), model="whisper-tiny.en", language="ru")


def test_the_file_route_decodes_russian_or_says_why_not() -> None:
    audio = wav(tone(660, 1000))
    recognizer = ToneRecognizer(RUSSIAN)
    with TestClient(gateway(recognizer, model="whisper-base")) as client:
        reply = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("call.wav", audio, "audio/wav")},
            data={"model": "whisper-1", "language": "ru"},
        )
    assert reply.json() == {"text": "Мой номер +7 916 123-45-67."}
    assert recognizer.heard[-1].language == "ru"
    with TestClient(gateway(ToneRecognizer(RUSSIAN), model="whisper-tiny.en")) as client:
        refused = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("call.wav", audio, "audio/wav")},
            data={"model": "whisper-1", "language": "ru"},
        )
    assert refused.status_code == 400
    assert "decodes only en" in refused.json()["error"]["message"]
