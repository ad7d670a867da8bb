"""The TTS gateway's routes on a sine voice: streamed call-rate audio, the cache, the voices."""

from __future__ import annotations

import io
import wave

import httpx
import pytest
from fakes import MemoryRedis, SineVoice
from fastapi import FastAPI
from fastapi.testclient import TestClient

from callkit.contracts.tts import CACHE_HEADER, SAMPLE_RATE_HEADER
from callkit.errors import PayloadTooLarge
from fs_bridge.clients import TtsClient


def seconds_of_pcm(data: bytes, rate: int) -> float:
    return len(data) / 2 / rate


def test_a_sentence_streams_as_call_rate_pcm_of_its_spoken_length(
    tts: FastAPI, voice: SineVoice
) -> None:
    with TestClient(tts) as client:
        reply = client.post("/synthesize", json={"text": "Good morning.", "sample_rate": 8000})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "audio/L16;rate=8000;channels=1"
    assert reply.headers[CACHE_HEADER] == "miss"
    assert reply.headers[SAMPLE_RATE_HEADER] == "8000"
    assert voice.said == ["Good morning."]
    expected = voice.seconds_for("Good morning.")
    assert abs(seconds_of_pcm(reply.content, 8000) - expected) < 0.02


def test_the_voice_is_given_speakable_text(tts: FastAPI, voice: SineVoice) -> None:
    with TestClient(tts) as client:
        reply = client.post("/synthesize", json={"text": "An MRI costs $450."})
    assert reply.status_code == 200
    assert voice.said, "the voice was asked to speak"
    spoken = " ".join(voice.said)
    assert "$" not in spoken
    assert "450" not in spoken
    assert "four hundred" in spoken


def test_a_repeated_sentence_comes_from_the_cache_without_the_voice(
    tts: FastAPI, voice: SineVoice, memory_redis: MemoryRedis
) -> None:
    with TestClient(tts) as client:
        first = client.post("/synthesize", json={"text": "Please hold on."})
        second = client.post("/synthesize", json={"text": "Please hold on."})
        metrics = client.get("/metrics").text
    assert first.headers[CACHE_HEADER] == "miss"
    assert second.headers[CACHE_HEADER] == "hit"
    assert second.content == first.content
    assert voice.said == ["Please hold on."]
    assert "SET" in memory_redis.commands, "the audio went to the Redis level of the cache"
    assert 'tts_requests_total{cache="hit",outcome="ok"} 1.0' in metrics


def test_wav_output_is_a_playable_file(tts: FastAPI, voice: SineVoice) -> None:
    with TestClient(tts) as client:
        reply = client.post("/synthesize", json={"text": "Thank you.", "format": "wav"})
    with wave.open(io.BytesIO(reply.content)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
    # A streamed WAV cannot know its length up front; the samples follow the 44-byte header.
    seconds = seconds_of_pcm(reply.content[44:], 16000)
    assert abs(seconds - voice.seconds_for("Thank you.")) < 0.02


def test_openai_speech_serves_pcm_at_24_khz(tts: FastAPI, voice: SineVoice) -> None:
    with TestClient(tts) as client:
        reply = client.post(
            "/v1/audio/speech",
            json={
                "model": "tts-1",
                "input": "Hello.",
                "voice": voice.name,
                "response_format": "pcm",
            },
        )
        mp3 = client.post(
            "/v1/audio/speech",
            json={
                "model": "tts-1",
                "input": "Hello.",
                "voice": voice.name,
                "response_format": "mp3",
            },
        )
    assert reply.status_code == 200
    assert abs(seconds_of_pcm(reply.content, 24000) - voice.seconds_for("Hello.")) < 0.02
    assert mp3.status_code == 400
    assert "not served" in mp3.json()["error"]["message"]


def test_the_loaded_voices_are_listed(tts: FastAPI, voice: SineVoice) -> None:
    with TestClient(tts) as client:
        listed = client.get("/v1/voices").json()
    assert listed == {
        "default": voice.name,
        "voices": [
            {
                "id": voice.name,
                "language": "en",
                "native_sample_rate": 22050,
                "model_version": "sine-1",
            }
        ],
    }


def test_empty_text_is_refused_with_its_reason(tts: FastAPI) -> None:
    with TestClient(tts) as client:
        reply = client.post("/synthesize", json={"text": "   "})
    assert reply.status_code == 400
    assert reply.json()["code"] == "empty_text"


async def test_what_the_bridge_asks_for_the_gateway_says(tts: FastAPI, voice: SineVoice) -> None:
    with TestClient(tts) as gateway:

        def forward(request: httpx.Request) -> httpx.Response:
            reply = gateway.post(
                request.url.path, content=request.content, headers=dict(request.headers)
            )
            kept = {"content-type": reply.headers["content-type"]}
            return httpx.Response(reply.status_code, content=reply.content, headers=kept)

        async with httpx.AsyncClient(transport=httpx.MockTransport(forward)) as http:
            client = TtsClient("http://tts", http, attempts=1)
            pcm = b"".join([chunk async for chunk in client.speak("Good morning.", 8000)])
            with pytest.raises(PayloadTooLarge, match="the limit is 1000"):
                _ = [chunk async for chunk in client.speak("word " * 300, 8000)]

    assert voice.said == ["Good morning."]
    assert abs(seconds_of_pcm(pcm, 8000) - voice.seconds_for("Good morning.")) < 0.02
