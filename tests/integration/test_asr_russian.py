"""Russian on the real models: whisper base decodes a Russian session in Russian, and the
English-only model refuses one instead of hearing it as English.

espeak-ng's Russian voice is too robotic for whisper base to get its words right (see the ASR
README), so this checks only what does not depend on that: the language of what comes back.
"""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from asr_gateway.engines import FasterWhisperEngine
from asr_gateway.languages import UnsupportedLanguage
from callkit.models import ModelStore, Registry
from callsim.voices import EspeakVoice

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


@pytest.fixture(scope="module")
def store() -> ModelStore:
    return ModelStore(Registry.load())


def test_whisper_base_writes_a_russian_session_in_cyrillic(store: ModelStore) -> None:
    engine = FasterWhisperEngine(store, "whisper-base", device="cpu", cpu_threads=2)
    pcm = EspeakVoice("ru", speed=0.85).speak("Мой телефон девять один шесть.")
    audio = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0
    result = engine.transcribe(audio, language="ru", hotwords=[], with_timestamps=True)
    assert result.language == "ru"
    assert re.search(r"[а-яё]", result.text.lower()), result.text
    assert not re.search(r"[a-z]", result.text.lower()), result.text
    assert "телефон" in result.text.lower(), result.text


def test_the_english_only_model_refuses_russian(store: ModelStore) -> None:
    engine = FasterWhisperEngine(store, "whisper-tiny.en", device="cpu", cpu_threads=2)
    silence = np.zeros(16000, np.float32)
    with pytest.raises(UnsupportedLanguage):
        engine.transcribe(silence, language="ru", hotwords=[])
    with pytest.raises(UnsupportedLanguage):
        engine.transcribe_batch([silence], language="ru", hotwords=[])
