"""FreeSWITCH bridge configuration (environment prefix ``BRIDGE_``)."""

from typing import ClassVar

from pydantic import Field, SecretStr

from callkit.settings import ServiceSettings, prefixed_config


class BridgeSettings(ServiceSettings):
    model_config = prefixed_config("BRIDGE_")
    service_name: ClassVar[str] = "fs_bridge"

    port: int = Field(
        8080, ge=1, le=65535, description="Port of the mod_audio_fork WebSocket and HTTP API."
    )
    esl_host: str = Field("127.0.0.1", description="FreeSWITCH event socket host.")
    esl_port: int = Field(8021, ge=1, le=65535, description="FreeSWITCH event socket port.")
    esl_password: SecretStr = Field(
        description="FreeSWITCH event socket password (required; never logged)."
    )
    asr_url: str = Field(
        "ws://127.0.0.1:8081/ws/transcribe",
        pattern=r"^wss?://",
        description="ASR gateway WebSocket URL.",
    )
    tts_url: str = Field(
        "http://127.0.0.1:8082", pattern=r"^https?://", description="TTS gateway base URL."
    )
    policy_url: str = Field(
        "http://127.0.0.1:8083", pattern=r"^https?://", description="Policy engine base URL."
    )
