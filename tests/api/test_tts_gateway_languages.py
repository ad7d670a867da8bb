"""The TTS gateway per language: a Russian request is spoken by a Russian voice or refused, naming
the voice to fetch; the English voice never reads Cyrillic; /ready names a missing voice.

The English voice is a sine voice; the Russian one goes through the real Piper loader and the real
model registry, over an empty model cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fakes import NOWHERE, MemoryRedis, SineVoice
from fastapi import FastAPI
from fastapi.testclient import TestClient

from callkit.contracts.tts import VOICE_HEADER
from callkit.errors import ConfigError
from callkit.models import ModelStore, Registry
from tts_gateway.app import create_app, load_piper
from tts_gateway.engines import TtsEngine
from tts_gateway.settings import TtsSettings

ENGLISH = "piper-en_US-joe-medium"
RUSSIAN = "piper-ru_RU-irina-medium"
PULL = f"`agent-models pull {RUSSIAN}`"
PROMPTS = 'states:\n  greeting:\n    say: {en: "Hello.", ru: "Здравствуйте."}\n'


@pytest.fixture
def english() -> SineVoice:
    return SineVoice(ENGLISH)


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(Registry.load(), tmp_path / "models")


def gateway(
    tmp_path: Path,
    memory_redis: MemoryRedis,
    store: ModelStore,
    loader: Callable[[TtsSettings, ModelStore, str], TtsEngine],
    **overrides: object,
) -> FastAPI:
    prompts = tmp_path / "prompts"
    prompts.mkdir(exist_ok=True)
    (prompts / "script.yaml").write_text(PROMPTS, encoding="utf-8")
    settings = TtsSettings.load(
        redis_url=NOWHERE,
        voice=ENGLISH,
        cache_dir=tmp_path / "tts-cache",
        prompts_dir=prompts,
        prerender_rates=[8000],
        **overrides,
    )
    return create_app(settings, store=store, connect_redis=memory_redis.connect, load_voice=loader)


def english_here(english: SineVoice) -> Callable[[TtsSettings, ModelStore, str], TtsEngine]:
    """The sine voice for English; any other voice through the real Piper loader."""

    def load(settings: TtsSettings, models: ModelStore, name: str) -> TtsEngine:
        return english if name == ENGLISH else load_piper(settings, models, name)

    return load


def test_a_russian_request_without_a_russian_voice_is_refused_naming_the_voice_to_fetch(
    tmp_path: Path, memory_redis: MemoryRedis, store: ModelStore, english: SineVoice
) -> None:
    app = gateway(tmp_path, memory_redis, store, english_here(english), languages=["en", "ru"])
    with TestClient(app) as client:
        asked = client.post("/synthesize", json={"text": "Здравствуйте!", "language": "ru"})
        unlabelled = client.post("/synthesize", json={"text": "МРТ стоит 4 500 ₽."})
        forced = client.post("/synthesize", json={"text": "Добрый день.", "voice": ENGLISH})
        english_still = client.post("/synthesize", json={"text": "Good morning.", "language": "en"})
        openai = client.post(
            "/v1/audio/speech", json={"model": "tts-1", "input": "Привет.", "voice": ENGLISH}
        )
    for refused in (asked, unlabelled):
        assert refused.status_code == 404
        body = refused.json()
        assert body["code"] == "voice_missing"
        assert f"{RUSSIAN}: not in the model cache" in body["detail"]
        assert PULL in body["detail"]
    assert forced.status_code == 400
    assert forced.json()["code"] == "voice_language_mismatch"
    assert openai.status_code == 400
    assert "Cyrillic" in openai.json()["error"]["message"]
    assert english_still.status_code == 200
    # The English voice spoke its prerendered prompt and the English request, never Cyrillic.
    assert english.said == ["Hello.", "Good morning."]


def test_ready_names_the_missing_voice_of_a_configured_language(
    tmp_path: Path, memory_redis: MemoryRedis, store: ModelStore, english: SineVoice
) -> None:
    app = gateway(tmp_path, memory_redis, store, english_here(english), languages=["en", "ru"])
    with TestClient(app) as client:
        deadline = time.monotonic() + 30
        ready = client.get("/ready")
        while ready.json()["checks"]["prerender"] != "ok" and time.monotonic() < deadline:
            time.sleep(0.05)  # the English prompts are prerendered in the background
            ready = client.get("/ready")
        listed = client.get("/v1/voices").json()
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["voices"].startswith(f"no voice for 'ru': {RUSSIAN}: not in the model cache")
    assert PULL in checks["voices"]
    assert checks["prerender"] == "ok", "the voices it has are prerendered all the same"
    assert [v["id"] for v in listed["voices"]] == [ENGLISH]


def test_an_explicit_missing_voice_is_refused_and_named_at_ready(
    tmp_path: Path, memory_redis: MemoryRedis, store: ModelStore, english: SineVoice
) -> None:
    app = gateway(tmp_path, memory_redis, store, english_here(english), extra_voices=[RUSSIAN])
    with TestClient(app) as client:
        by_name = client.post("/synthesize", json={"text": "Да.", "voice": RUSSIAN})
        ready = client.get("/ready").json()
    assert by_name.status_code == 404
    assert PULL in by_name.json()["detail"]
    assert RUSSIAN in ready["checks"]["voices"]


def test_a_language_that_is_not_configured_is_refused_naming_the_setting_and_the_voice(
    tmp_path: Path, memory_redis: MemoryRedis, store: ModelStore, english: SineVoice
) -> None:
    app = gateway(tmp_path, memory_redis, store, english_here(english))
    with TestClient(app) as client:
        reply = client.post("/synthesize", json={"text": "Здравствуйте.", "language": "ru-RU"})
        ready = client.get("/ready")
        german = client.post("/synthesize", json={"text": "Guten Tag.", "language": "de"})
    assert reply.status_code == 404
    detail = reply.json()["detail"]
    assert "TTS_LANGUAGES" in detail
    assert PULL in detail
    assert ready.status_code == 200, "nothing configured is missing"
    assert german.status_code == 404
    assert "the model registry has none" in german.json()["detail"]
    assert english.said == ["Hello."]


def test_a_configured_language_the_registry_has_no_voice_for_stops_the_start(
    tmp_path: Path, memory_redis: MemoryRedis, store: ModelStore, english: SineVoice
) -> None:
    app = gateway(tmp_path, memory_redis, store, english_here(english), languages=["en", "xx"])
    with pytest.raises(ConfigError, match="TTS_LANGUAGES has 'xx'"), TestClient(app):
        pass


def test_with_a_russian_voice_russian_text_is_normalized_and_spoken_by_it(
    tmp_path: Path, memory_redis: MemoryRedis, store: ModelStore, english: SineVoice
) -> None:
    russian = SineVoice(RUSSIAN)
    russian.language = "ru"
    voices = {ENGLISH: english, RUSSIAN: russian}
    app = gateway(
        tmp_path,
        memory_redis,
        store,
        lambda _s, _m, name: voices[name],
        languages=["en", "ru"],
        extra_voices=[RUSSIAN],
    )
    with TestClient(app) as client:
        asked = client.post("/synthesize", json={"text": "МРТ стоит 4 500 ₽.", "language": "ru"})
        unlabelled = client.post("/synthesize", json={"text": "Запись на 1 декабря в 14:30."})
        english_reply = client.post("/synthesize", json={"text": "It costs $450."})
        mismatch = client.post(
            "/synthesize", json={"text": "Hello.", "voice": RUSSIAN, "language": "en"}
        )
        ready = client.get("/ready")
    assert asked.status_code == unlabelled.status_code == english_reply.status_code == 200
    assert asked.headers[VOICE_HEADER] == RUSSIAN
    assert unlabelled.headers[VOICE_HEADER] == RUSSIAN
    assert english_reply.headers[VOICE_HEADER] == ENGLISH
    assert mismatch.status_code == 400
    assert "Здравствуйте." in russian.said, "the Russian prompt was prerendered by its voice"
    assert "эм-эр-тэ стоит четыре тысячи пятьсот рублей." in russian.said
    assert "Запись на первое декабря в четырнадцать тридцать." in russian.said
    assert english.said == ["Hello.", "It costs four hundred fifty dollars."]
    assert ready.status_code == 200
