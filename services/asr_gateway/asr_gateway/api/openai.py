"""POST /v1/audio/transcriptions: OpenAI's file transcription endpoint on the shared model."""

from __future__ import annotations

import io
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from asr_gateway.postprocess import HotwordCorrector, format_entities
from asr_gateway.scheduler import Job
from callkit.errors import InvalidInput, PayloadTooLarge, UnsupportedFormat

router = APIRouter()
Format = Literal["json", "text", "srt", "verbose_json", "vtt"]


def _stamp(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _decode(data: bytes) -> np.ndarray:
    from faster_whisper.audio import decode_audio

    try:
        audio = decode_audio(io.BytesIO(data), sampling_rate=16000)
    except Exception as exc:
        raise UnsupportedFormat(f"could not decode the audio file ({type(exc).__name__})") from None
    if audio.size == 0:
        raise InvalidInput("the audio file holds no audio")
    return np.asarray(audio, dtype=np.float32)


@router.post("/v1/audio/transcriptions", summary="OpenAI-compatible file transcription.")
async def transcriptions(
    request: Request,
    file: Annotated[UploadFile, File()],
    model: Annotated[str, Form()] = "whisper-1",
    language: Annotated[str | None, Form()] = None,
    prompt: Annotated[str | None, Form()] = None,
    response_format: Annotated[Format, Form()] = "json",
    temperature: Annotated[float, Form()] = 0.0,
) -> Response:
    settings = request.app.state.settings
    limit = settings.max_upload_mb * 1024 * 1024
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"file is over the {settings.max_upload_mb} MB limit")
    audio = _decode(data)
    languages = request.app.state.languages
    lang = languages.check(language or settings.language)  # 400 for one the model cannot decode
    hotwords = list(settings.hotwords)
    job = Job("file", "file", audio, lang, hotwords, with_timestamps=True)
    result = await request.app.state.scheduler.submit(job)
    corrector = HotwordCorrector([*hotwords, *languages.vocabulary(lang)])

    def written(said: str) -> str:
        return format_entities(corrector.correct(said), lang)

    text = written(result.text)
    duration = len(audio) / 16000
    if response_format == "text":
        return PlainTextResponse(text)
    if response_format in ("srt", "vtt"):
        sep = "," if response_format == "srt" else "."
        blocks = [
            (f"{i}\n" if response_format == "srt" else "")
            + f"{_stamp(s.start_s, sep)} --> {_stamp(s.end_s, sep)}\n{written(s.text)}\n"
            for i, s in enumerate(result.segments, 1)
        ]
        body = ("WEBVTT\n\n" if response_format == "vtt" else "") + "\n".join(blocks)
        return PlainTextResponse(
            body, media_type="text/vtt" if response_format == "vtt" else "text/plain"
        )
    if response_format == "json":
        return JSONResponse({"text": text})
    segments: list[dict[str, Any]] = [
        {
            "id": i,
            "seek": 0,
            "start": s.start_s,
            "end": s.end_s,
            "text": s.text,
            "tokens": [],
            "temperature": temperature,
            "avg_logprob": s.avg_logprob,
            "compression_ratio": s.compression_ratio,
            "no_speech_prob": s.no_speech_prob,
        }
        for i, s in enumerate(result.segments)
    ]
    return JSONResponse(
        {
            "task": "transcribe",
            "language": result.language,
            "duration": duration,
            "text": text,
            "segments": segments,
        }
    )
