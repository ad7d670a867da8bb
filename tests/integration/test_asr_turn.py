"""Semantic end of turn with the real models: Smart Turn v3 tells a finished sentence from one the
caller broke off, and the session ends the first after a short silence and holds the second.
Speech is the project's Piper voice; a cut-off turn is a sentence stopped at its first pause."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest
from serving import serving_in_thread
from test_asr_gateway import of, stream

from asr_gateway.app import create_app, load_silero, load_smart_turn
from asr_gateway.endpointing import EndpointConfig, Verdict
from asr_gateway.session import JudgeTurn, SessionConfig, Transcribe, TranscriptionSession
from asr_gateway.settings import AsrSettings
from asr_gateway.turn import SmartTurn
from callkit.audio import resample
from callkit.models import ModelStore, Registry
from callkit.models.registry import ModelMissing
from callkit.vad import SileroVad
from tts_gateway.engines import CancelToken, PiperEngine

COMPLETE = "My knee has hurt for two weeks."
BROKEN_OFF = "I was wondering if, you have anything on Friday."  # stopped at "if,"


@pytest.fixture(scope="module")
def store() -> ModelStore:
    return ModelStore(Registry.load())


@pytest.fixture(scope="module")
def turn(store: ModelStore) -> SmartTurn:
    return load_smart_turn(AsrSettings.load(), store)


@pytest.fixture(scope="module")
def vad(store: ModelStore) -> SileroVad:
    loaded = load_silero(AsrSettings.load(), store)
    assert isinstance(loaded, SileroVad)
    return loaded


@pytest.fixture(scope="module")
def voice(store: ModelStore) -> dict[str, np.ndarray]:
    piper = PiperEngine.from_registry(store, "piper-en_US-joe-medium", threads=2)

    def say(text: str) -> np.ndarray:
        s = piper.synthesize(text, speed=1.0, cancel=CancelToken())
        pcm = np.frombuffer(resample(s.audio.tobytes(), s.sample_rate, 16000), "<i2")
        loud = np.nonzero(np.abs(pcm.astype(np.int32)) > 500)[0]
        return pcm[loud[0] : loud[-1] + 1]

    broken = say(BROKEN_OFF)
    return {
        "complete": say(COMPLETE),
        "broken": broken[: first_pause(broken)],
        "rest": say(BROKEN_OFF.split(", ", 1)[1]),
    }


def first_pause(pcm: np.ndarray, min_ms: int = 150) -> int:
    """Sample index where the first pause of at least ``min_ms`` begins (10 ms frames 40 dB
    under the loudest)."""
    frames = pcm[: len(pcm) // 160 * 160].astype(np.float32).reshape(-1, 160)
    rms = np.sqrt((frames**2).mean(axis=1))
    quiet = rms < rms.max() * 0.01
    run = 0
    for i, q in enumerate(quiet):
        run = run + 1 if q else 0
        if run * 10 >= min_ms:
            return (i - run + 1) * 160
    raise AssertionError("no pause in the sentence")


def with_silence(pcm: np.ndarray, after_s: float) -> np.ndarray:
    return np.concatenate([np.zeros(8000, np.int16), pcm, np.zeros(int(16000 * after_s), np.int16)])


def test_a_finished_sentence_and_a_broken_off_one_get_clearly_different_probabilities(
    turn: SmartTurn, voice: dict[str, np.ndarray]
) -> None:
    config = EndpointConfig(**_thresholds())
    tail = np.zeros(1600, np.int16)  # 100 ms of the silence after, as the gateway asks
    complete = turn.probability(np.concatenate([voice["complete"], tail]) / 32768.0)
    broken = turn.probability(np.concatenate([voice["broken"], tail]) / 32768.0)
    assert config.classify(complete) is Verdict.COMPLETE
    assert config.classify(broken) is Verdict.INCOMPLETE
    assert complete - broken > 0.5


def _thresholds() -> dict[str, Any]:
    s = AsrSettings.load()
    return {
        "complete_silence_ms": s.turn_complete_silence_ms,
        "incomplete_silence_ms": s.turn_incomplete_silence_ms,
        "complete_above": s.turn_complete_above,
        "incomplete_below": s.turn_incomplete_below,
    }


def end_silence(pcm: np.ndarray, vad: SileroVad, turn: SmartTurn) -> int:
    """Feed the clip through a session (real VAD, real turn model, answered at once); the
    trailing silence after which its one utterance ended."""
    config = SessionConfig(partials=False, endpoint=EndpointConfig(**_thresholds()))
    session = TranscriptionSession("t", config, vad.stream())
    session.turn_ask_ms = 96
    audio = with_silence(pcm, 3.0)
    ends: list[int] = []
    for i in range(0, len(audio), 320):
        actions: list[Any] = session.feed(audio[i : i + 320], now=i / 16000)
        for ask in [a for a in actions if isinstance(a, JudgeTurn)]:
            actions += session.on_turn(ask.key, turn.probability(ask.audio)).actions
        for a in actions:
            if isinstance(a, Transcribe) and a.kind == "final" and a.decided_ms is not None:
                ends.append(a.decided_ms - a.end_ms)
    assert len(ends) == 1, ends
    return ends[0]


def test_a_finished_sentence_ends_after_a_short_silence_and_a_broken_off_one_is_held(
    vad: SileroVad, turn: SmartTurn, voice: dict[str, np.ndarray]
) -> None:
    settings = AsrSettings.load()
    short = end_silence(voice["complete"], vad, turn)
    held = end_silence(voice["broken"], vad, turn)
    assert short < settings.end_silence_ms  # sooner than without the turn model
    assert short <= settings.turn_complete_silence_ms + 32  # within one VAD frame
    assert held >= settings.turn_incomplete_silence_ms


def test_a_missing_turn_model_is_named_at_ready(free_port: int) -> None:
    def missing(settings: AsrSettings, models: ModelStore) -> SmartTurn:
        raise ModelMissing(f"{settings.turn_model} is not in the model cache")

    settings = AsrSettings.load(model="whisper-tiny.en")
    with serving_in_thread(create_app(settings, load_turn=missing), free_port) as url:
        ready = httpx.get(url + "/ready")
    assert ready.status_code == 503
    check = ready.json()["checks"]["turn_model"]
    assert "smart-turn-v3" in check
    assert "ASR_TURN_DETECTION=false" in check


def test_turn_detection_off_needs_no_turn_model(free_port: int) -> None:
    def never(settings: AsrSettings, models: ModelStore) -> SmartTurn:
        raise AssertionError("the turn model was loaded with turn detection off")

    settings = AsrSettings.load(model="whisper-tiny.en", turn_detection=False)
    with serving_in_thread(create_app(settings, load_turn=never), free_port) as url:
        ready = httpx.get(url + "/ready")
    assert ready.status_code == 200
    assert "turn_model" not in ready.json()["checks"]


async def test_over_the_socket_a_finished_sentence_ends_in_a_short_pause_and_a_broken_off_one_waits(
    free_port: int, voice: dict[str, np.ndarray]
) -> None:
    # Both pauses would give the opposite with the fixed 500 ms end silence: the first is shorter
    # (one utterance), the second longer (two).
    audio = np.concatenate(
        [
            np.zeros(8000, np.int16),
            voice["complete"],
            np.zeros(int(16000 * 0.45), np.int16),
            voice["broken"],
            np.zeros(int(16000 * 0.8), np.int16),
            voice["rest"],
            np.zeros(16000 * 2, np.int16),
        ]
    )
    settings = AsrSettings.load(model="whisper-tiny.en")
    with serving_in_thread(create_app(settings), free_port) as url:
        ws = url.replace("http", "ws") + "/ws/transcribe"
        events = await stream(ws, audio.tobytes(), speedup=1.0)
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(url + "/metrics")).text
    finals = [e["text"].lower() for e in of(events, "transcript.final")]
    assert len(finals) == 2, finals
    assert "knee" in finals[0]
    assert "wondering" in finals[1]
    assert "friday" in finals[1]

    def verdicts(verdict: str) -> float:
        line = f'asr_turn_verdicts_total{{verdict="{verdict}"}} '
        return float(metrics.split(line)[1].split()[0]) if line in metrics else 0.0

    assert verdicts("complete") >= 1  # the first sentence
    assert verdicts("incomplete") >= 1  # "I was wondering if,"
