"""TTS gateway configuration (environment prefix ``TTS_``)."""

from typing import ClassVar

from pydantic import Field

from callkit.settings import ServiceSettings, prefixed_config


class TtsSettings(ServiceSettings):
    model_config = prefixed_config("TTS_")
    service_name: ClassVar[str] = "tts_gateway"

    port: int = Field(8082, ge=1, le=65535, description="TCP port to listen on.")
    voice: str = Field(
        "piper-en_US-joe-medium",
        description="Default voice: a tts model name from the model registry.",
    )
    cache_ttl_s: int = Field(
        3600, ge=0, description="How long synthesized audio stays in the Redis cache, in seconds."
    )
