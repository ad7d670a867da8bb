"""POST /synthesize (callkit.contracts.tts), POST /v1/audio/speech (OpenAI shape), GET /v1/voices."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from callkit.audio import wav_header
from callkit.contracts.tts import (
    CACHE_HEADER,
    SAMPLE_RATE_HEADER,
    SPEEDS,
    VOICE_HEADER,
    SynthesizeRequest,
)
from callkit.errors import InvalidInput
from callkit.http import ClosingStreamingResponse
from tts_gateway.synthesizer import Prepared, Synthesizer

router = APIRouter()
OPENAI_PCM_RATE = 24000  # OpenAI's "pcm" format is 24 kHz 16-bit mono little-endian
#: What the audio routes answer: raw 16-bit PCM (``audio/L16;rate=…``) or a WAV file.
_AUDIO: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The audio, streamed.",
        "content": {
            "audio/L16": {"schema": {"type": "string", "format": "binary"}},
            "audio/wav": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


class SpeechRequest(BaseModel):
    """OpenAI's /v1/audio/speech body. Without response_format the reply is WAV (OpenAI's mp3 is not served)."""

    model: str
    input: str
    voice: str
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "wav"
    speed: float = Field(1.0, ge=0.25, le=4.0)
    instructions: str | None = None


@router.post(
    "/synthesize",
    summary="Synthesize text; the audio streams as soon as the first sentence is ready.",
    response_class=ClosingStreamingResponse,
    responses=_AUDIO,
)
async def synthesize(body: SynthesizeRequest, request: Request) -> ClosingStreamingResponse:
    started = time.perf_counter()
    synth: Synthesizer = request.app.state.synth
    prepared = synth.prepare(
        body.text, body.voice, body.sample_rate, body.speed, language=body.language
    )
    return await _respond(synth, prepared, wav=body.format == "wav", started=started)


@router.post(
    "/v1/audio/speech",
    summary="OpenAI-compatible speech endpoint (wav or pcm).",
    response_class=ClosingStreamingResponse,
    responses=_AUDIO,
)
async def speech(body: SpeechRequest, request: Request) -> ClosingStreamingResponse:
    started = time.perf_counter()
    if body.response_format not in ("wav", "pcm"):
        raise InvalidInput(
            f"response_format {body.response_format!r} is not served; use 'wav' or 'pcm' (24 kHz 16-bit mono)",
            code="unsupported_format",
        )
    if not SPEEDS[0] <= body.speed <= SPEEDS[1]:
        raise InvalidInput(f"speed must be between {SPEEDS[0]} and {SPEEDS[1]}, got {body.speed}")
    synth: Synthesizer = request.app.state.synth
    rate = OPENAI_PCM_RATE if body.response_format == "pcm" else 16000
    prepared = synth.prepare(body.input, body.voice, rate, body.speed)
    return await _respond(synth, prepared, wav=body.response_format == "wav", started=started)


@router.get("/v1/voices", summary="Voices this gateway has loaded.")
async def voices(request: Request) -> dict[str, Any]:
    synth: Synthesizer = request.app.state.synth
    return {
        "default": synth.default_voice,
        "voices": [
            {
                "id": name,
                "language": e.language,
                "native_sample_rate": e.sample_rate,
                "model_version": e.model_version,
            }
            for name, e in sorted(synth.engines.items())
        ],
    }


async def _respond(
    synth: Synthesizer, prepared: Prepared, *, wav: bool, started: float
) -> ClosingStreamingResponse:
    hit = await synth.lookup(prepared)
    cache = "hit" if hit else "miss"
    metrics = synth.metrics
    rate = prepared.sample_rate

    async def body() -> AsyncIterator[bytes]:
        outcome = "cancelled"
        first = True
        try:
            if wav:
                yield wav_header(rate, 1, len(hit.pcm) if hit else None)
            chunks = _iterate(synth.chunks_of(hit.pcm, rate)) if hit else synth.synthesize(prepared)
            async for chunk in chunks:
                if first:
                    first = False
                    metrics.first_byte.labels(cache).observe(time.perf_counter() - started)
                yield chunk
            outcome = "ok"
        except Exception:
            outcome = "error"
            raise
        finally:
            metrics.requests.labels(cache, outcome).inc()

    media_type = "audio/wav" if wav else f"audio/L16;rate={rate};channels=1"
    headers = {
        CACHE_HEADER: cache,
        SAMPLE_RATE_HEADER: str(rate),
        VOICE_HEADER: prepared.engine.name,
    }
    return ClosingStreamingResponse(body(), media_type=media_type, headers=headers)


async def _iterate(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
