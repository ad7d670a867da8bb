"""ASR gateway configuration (environment prefix ``ASR_``)."""

import os
from typing import ClassVar, Literal

from pydantic import Field

from callkit.settings import ServiceSettings, prefixed_config


class AsrSettings(ServiceSettings):
    model_config = prefixed_config("ASR_")
    service_name: ClassVar[str] = "asr_gateway"

    port: int = Field(8081, ge=1, le=65535, description="TCP port to listen on.")
    model: str = Field(
        "whisper-base",
        description="ASR model name from the model registry (agent-models list --kind asr).",
    )
    vad_model: str = Field("silero-vad", description="VAD model name from the model registry.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Inference device; auto picks CUDA when available."
    )
    cpu_threads: int = Field(
        default_factory=lambda: os.cpu_count() or 2,
        ge=1,
        le=256,
        description="CPU threads for the model.",
    )
    language: str = Field(
        "en", min_length=2, max_length=8, description="Default language code of sessions."
    )
    hotwords: list[str] = Field(
        default_factory=list,
        description='Vocabulary to favour and correct towards, as a JSON list (e.g. ["RUMA"]).',
    )
    vocabulary: dict[str, list[str]] = Field(
        {"ru": ["РУМА", "МРТ", "КТ", "УЗИ"]},
        description="Terms the finals of each language are corrected towards, as a JSON object of "
        "lists by language code; unlike ASR_HOTWORDS they are not given to the decoder (with "
        "whisper base, terms read by the decoder come back on audio it cannot make out).",
    )
    initial_prompts: dict[str, str] = Field(
        {},
        description="Text the recognizer reads before each utterance of a session in that "
        'language, as a JSON object by language code (e.g. {"ru": "Диагностический центр '
        'РУМА."}); an utterance that only says it back on weak audio is dropped.',
    )
    max_sessions: int = Field(
        8,
        ge=1,
        le=1000,
        description="Concurrent sessions; more are refused with a recoverable error.",
    )
    max_batch: int = Field(
        0,
        ge=0,
        le=64,
        description="Most sessions' clips run in one pass of the model; 0: 8 on CUDA, 1 on CPU "
        "(on two CPU cores batching did not pay consistently).",
    )
    encoder_window_s: int = Field(
        0,
        ge=0,
        le=30,
        description="Shortest encoder window for an utterance, in seconds (longer utterances get "
        "theirs plus 3 s); 30 is Whisper's full window; 0: 30 on CUDA, 15 on CPU, where it makes "
        "a final about 2.5x faster.",
    )
    early_finals: bool = Field(
        True,
        description="Start a final during the end silence (as late as the model's measured time "
        "allows) and use it if the silence completes; withdrawn when speech resumes. Skipped while "
        "the model has a queue.",
    )
    sensitivity: Literal["low", "medium", "high"] = Field(
        "medium", description="VAD sensitivity: high starts on quieter speech."
    )
    end_silence_ms: int = Field(
        500, ge=100, le=5000, description="Silence that ends an utterance, in milliseconds."
    )
    max_speech_ms: int = Field(
        20000,
        ge=2000,
        le=60000,
        description="Longest utterance before a forced final, in milliseconds.",
    )
    hold_after_ms: int = Field(
        10000, ge=1000, description="Silence after which a session goes on hold, in milliseconds."
    )
    turn_detection: bool = Field(
        True,
        description="Ask the turn model, once per trailing silence, whether the caller has "
        "finished: a complete turn ends after ASR_TURN_COMPLETE_SILENCE_MS, an incomplete one "
        "after ASR_TURN_INCOMPLETE_SILENCE_MS, an unsure one after the end silence.",
    )
    turn_model: str = Field("smart-turn-v3", description="Turn model name from the model registry.")
    turn_complete_silence_ms: int = Field(
        200,
        ge=64,
        le=5000,
        description="Silence that ends a turn the model calls complete, in milliseconds "
        "(at most the end silence).",
    )
    turn_incomplete_silence_ms: int = Field(
        1500,
        ge=100,
        le=10000,
        description="Silence that ends a turn the model calls incomplete, in milliseconds "
        "(at least the end silence).",
    )
    turn_complete_above: float = Field(
        0.5, ge=0, le=1, description="Turn model probability at or above which a turn is complete."
    )
    turn_incomplete_below: float = Field(
        0.15, ge=0, le=1, description="Turn model probability below which a turn is incomplete."
    )
    min_partial_interval_ms: int = Field(
        300, ge=100, le=5000, description="Shortest interval between partials of one session."
    )
    energy_floor_dbfs: float = Field(
        -55.0, ge=-90, le=0, description="Frames quieter than this skip the VAD model."
    )
    max_frame_bytes: int = Field(
        65536, ge=320, description="Largest binary audio message accepted."
    )
    max_upload_mb: int = Field(
        25, ge=1, le=500, description="Largest file accepted by /v1/audio/transcriptions."
    )
