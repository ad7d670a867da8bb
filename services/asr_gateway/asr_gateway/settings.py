"""ASR gateway configuration (environment prefix ``ASR_``)."""

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
    language: str = Field(
        "en", min_length=2, max_length=8, description="Default language code of sessions."
    )
