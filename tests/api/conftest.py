"""The api tests' apps, each built on in-process fakes (tests/api/fakes.py): no Redis, no models."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from fakes import (
    NOWHERE,
    PHRASES,
    EnergyVad,
    FakeSwitch,
    MemoryRedis,
    MemorySink,
    SineVoice,
    ToneRecognizer,
    bridge_settings,
)
from fastapi import FastAPI

from asr_gateway.app import create_app as asr_app
from asr_gateway.settings import AsrSettings
from fs_bridge.app import create_app as bridge_app
from notifier.app import create_app as notifier_app
from notifier.settings import NotifySettings
from tts_gateway.app import create_app as tts_app
from tts_gateway.settings import TtsSettings


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """An api test that reaches for a real socket is a defect: fail it where it happens."""

    def refuse(self: socket.socket, address: Any) -> None:
        raise AssertionError(f"an api test opened a network connection to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.fixture
def memory_redis() -> MemoryRedis:
    return MemoryRedis()


@pytest.fixture
def recognizer() -> ToneRecognizer:
    return ToneRecognizer(PHRASES)


@pytest.fixture
def asr(recognizer: ToneRecognizer) -> FastAPI:
    # Tones, not speech: the end-of-turn model has nothing to judge, so turns end on the fixed
    # silence (the model's own tests use real speech: tests/integration/test_asr_turn.py).
    settings = AsrSettings.load(
        model="whisper-tiny.en", end_silence_ms=400, early_finals=False, turn_detection=False
    )
    return asr_app(
        settings,
        load_engine=lambda _s, _m: recognizer,
        load_vad=lambda _s, _m: EnergyVad(),
    )


@pytest.fixture
def voice() -> SineVoice:
    return SineVoice("en_US-lessac-medium")


@pytest.fixture
def tts(memory_redis: MemoryRedis, voice: SineVoice, tmp_path: Path) -> FastAPI:
    settings = TtsSettings.load(
        redis_url=NOWHERE, voice=voice.name, prerender=False, cache_dir=tmp_path / "tts-cache"
    )
    return tts_app(settings, connect_redis=memory_redis.connect, load_voice=lambda *_: voice)


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def notifier(memory_redis: MemoryRedis, sink: MemorySink) -> FastAPI:
    settings = NotifySettings.load(redis_url=NOWHERE, block_ms=50, locale="en")
    return notifier_app(settings, connect_redis=memory_redis.connect, sink=sink)


@pytest.fixture
def switch() -> FakeSwitch:
    return FakeSwitch(password="switch-secret")


@pytest.fixture
def bridge(memory_redis: MemoryRedis, switch: FakeSwitch, tmp_path: Path) -> FastAPI:
    return bridge_app(
        bridge_settings(tmp_path), connect_redis=memory_redis.connect, event_socket=switch.connect
    )
