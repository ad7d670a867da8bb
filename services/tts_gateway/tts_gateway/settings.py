"""TTS gateway configuration (environment prefix ``TTS_``)."""

import os
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from callkit.contracts.streams import TTS_PREFIX
from callkit.settings import ServiceSettings, prefixed_config


def _default_cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "clinic-voice-agent" / "tts"


class TtsSettings(ServiceSettings):
    model_config = prefixed_config("TTS_")
    service_name: ClassVar[str] = "tts_gateway"

    port: int = Field(8082, ge=1, le=65535, description="TCP port to listen on.")
    voice: str = Field(
        "piper-en_US-joe-medium",
        description="Default voice: a tts model name from the model registry.",
    )
    extra_voices: list[str] = Field(
        default_factory=list,
        description='More voices to load, as a JSON list (e.g. ["piper-ru_RU-irina-medium"]).',
    )
    languages: list[str] = Field(
        default_factory=list,
        description="Languages the gateway must speak, as a JSON list (e.g. "
        '["en","ru"]); each is spoken by the registry\'s voice for it unless TTS_VOICE or '
        "TTS_EXTRA_VOICES names one, and /ready fails while that voice is not in the model cache.",
    )
    cache_ttl_s: int = Field(
        3600, ge=0, description="How long synthesized audio stays in the Redis cache, in seconds."
    )
    cache_namespace: str = Field(
        TTS_PREFIX, pattern=r"^[A-Za-z0-9:_-]+$", description="Redis key prefix of the audio cache."
    )
    cache_dir: Path = Field(
        default_factory=_default_cache_dir, description="Directory of the persistent file cache."
    )
    cache_max_mb: int = Field(
        512,
        ge=1,
        description="Size bound of the file cache in MB; least recently used files go first.",
    )
    cache_max_entry_kb: int = Field(
        2048,
        ge=16,
        description="Largest utterance kept in Redis, in KB (bigger ones stay in files).",
    )
    max_text_chars: int = Field(
        1000, ge=1, le=20000, description="Longest text accepted in one request."
    )
    chunk_ms: int = Field(
        40, ge=20, le=200, description="Size of the streamed audio chunks, in milliseconds."
    )
    onnx_threads: int = Field(2, ge=1, le=64, description="onnxruntime threads per synthesis.")
    workers: int = Field(2, ge=1, le=64, description="Syntheses that may run at once.")
    prompts_dir: Path = Field(
        Path("prompts"), description="Where the dialog script's fixed prompts are."
    )
    prerender: bool = Field(True, description="Synthesize every fixed prompt at start-up.")
    prerender_rates: list[int] = Field(
        [8000, 16000], description="Call sample rates to prerender, as a JSON list."
    )
