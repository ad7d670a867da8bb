"""FreeSWITCH bridge configuration (environment prefix ``BRIDGE_``)."""

import os
import socket
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, SecretStr

from callkit.settings import ServiceSettings, prefixed_config
from fs_bridge.bargein import BargeInConfig


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
    fork_user: str = Field(
        "freeswitch", min_length=1, description="Basic-auth user FreeSWITCH's audio fork sends."
    )
    fork_password: SecretStr = Field(
        description="Basic-auth password of the audio fork (MOD_AUDIO_BASIC_AUTH_PASSWORD in the "
        "dialplan; required; never logged)."
    )
    fork_token: SecretStr | None = Field(
        None, description="Alternatively, a token FreeSWITCH passes as ?token= in the fork URL."
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
    playback: Literal["stream", "file"] = Field(
        "stream",
        description="stream: L16 over the fork with playout marks (the jambonz mod_audio_fork); "
        "file: playAudio files played with sendmsg playback (the upstream module).",
    )
    language: str = Field("en", min_length=2, max_length=8, description="Default call language.")
    recordings_dir: Path = Field(
        Path("recordings"), description="Where each call's stereo recording is written."
    )
    max_calls: int = Field(
        4,
        ge=1,
        le=1000,
        description="Calls taken at once; a call beyond them hears the busy phrase and is hung "
        "up, so the calls in progress keep their pace. 4 fits the CPU stack on 2 cores (3 calls "
        "measured at voice-to-voice p95 1.3 s); a GPU stack takes more.",
    )
    phrases_file: Path = Field(
        Path("prompts/bridge.json"),
        description="The bridge's own phrases per locale (the busy phrase), prerendered by the "
        "TTS gateway.",
    )
    amd: bool = Field(
        True,
        description="Answering-machine detection on outbound calls: the agent listens first and "
        "opens only to a person; a machine gets the campaign's voicemail handling after its beep.",
    )
    amd_phrases_file: Path = Field(
        Path("prompts/amd.json"),
        description="What voicemail greetings and call screeners say, per language.",
    )
    replica: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}",
        min_length=1,
        pattern=r"^[^:*?\[\]\s]+$",
        description="This bridge's name in its load key (bridge:{replica}:load), which the dialer "
        "reads.",
    )
    silence_s: float = Field(
        7.0, gt=0, le=120, description="Caller silence before the agent reprompts, in seconds."
    )
    max_call_s: float = Field(900.0, gt=0, description="Longest call before the bridge hangs up.")
    interrupt_wait_s: float = Field(
        3.0, gt=0, le=30, description="After a barge-in, how long to wait for the caller's words."
    )
    dtmf_digit_pause_s: float = Field(
        2.0,
        gt=0,
        le=10,
        description="Key presses are collected into one input until the caller presses # or "
        "pauses this long between keys, in seconds.",
    )
    vad: bool = Field(
        True,
        description="Decide the caller's voice with Silero VAD (one shared model) as well as its "
        "level and the echo guard; off: level and echo guard alone.",
    )
    vad_model: str = Field("silero-vad", description="VAD model name from the model registry.")
    barge_in_yield_ms: int = Field(
        40,
        ge=20,
        le=1000,
        description="Loud caller audio (not the agent's echo) over the agent this long makes it "
        "go quiet at once; the VAD then decides: it resumes (a backchannel) or stops (an "
        "interruption).",
    )
    barge_in_min_span_ms: int = Field(
        700,
        ge=100,
        le=3000,
        description="Caller speech over the agent lasting this long stops it for good "
        "(backchannels are shorter: the agent resumes after them).",
    )
    barge_in_resume_gap_ms: int = Field(
        400,
        ge=100,
        le=3000,
        description="After the agent went quiet, this much silence from the caller resumes it.",
    )
    barge_in_min_voiced_ms: int = Field(
        400, ge=60, le=3000, description="...of which this much must be the caller's own voice."
    )
    barge_in_echo_margin: float = Field(
        0.25,
        gt=0,
        le=4,
        description="Caller level must exceed this share of the agent's recent level (echo guard).",
    )
    apology_text: str = Field(
        "Sorry, I did not catch that. Could you say it again?",
        description="Said when a service fails mid-turn.",
    )

    def barge_in_config(self) -> BargeInConfig:
        return BargeInConfig(
            yield_ms=self.barge_in_yield_ms,
            resume_gap_ms=self.barge_in_resume_gap_ms,
            min_span_ms=self.barge_in_min_span_ms,
            min_voiced_ms=self.barge_in_min_voiced_ms,
            echo_margin=self.barge_in_echo_margin,
        )
