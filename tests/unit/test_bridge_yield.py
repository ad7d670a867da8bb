"""Yield at once, decide after, on real voices: the bridge's turn-taking core with the real
Silero VAD, fed the agent's Piper voice on the played channel and a G.711 caller channel that
carries the line's echo of it and espeak-ng callers (voices the thresholds were not set on).

The agent's own echo (-6 to -18 dB, 60 to 250 ms late) never makes it yield; a backchannel
makes it yield and resume; a question makes it yield within a few frames and then stop."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from callkit.audio import ulaw_decode, ulaw_encode
from callkit.contracts.dialog import CallStarted
from callkit.models import ModelStore, Registry
from callkit.vad import SileroVad
from callsim.voices import voice_for
from fs_bridge.bargein import BargeInDetector
from fs_bridge.busy import load_phrases
from fs_bridge.echo import FRAME, RATE
from fs_bridge.turns import (
    Resume,
    StopPlayback,
    TurnConfig,
    TurnTaker,
    Yield,
    resume_point,
)

ROOT = Path(__file__).resolve().parents[2]
AGENT_TEXT = (
    "Our clinic is open from eight in the morning until eight in the evening, Monday to "
    "Saturday, and we can book your scan today."
)
CALLER_AT_MS = 2000  # where the caller's words begin, into the agent's sentence

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


@functools.cache
def vad() -> SileroVad:
    return SileroVad(next(ModelStore(Registry.load()).resolve("silero-vad").glob("*.onnx")))


@functools.cache
def agent_voice() -> npt.NDArray[np.float64]:
    pcm = voice_for("piper:en_US-joe-medium").speak(AGENT_TEXT)
    return np.frombuffer(pcm, "<i2").astype(np.float64) * 0.5  # about -12 dBFS peaks


def speech(voice: str, text: str) -> npt.NDArray[np.float64]:
    return np.frombuffer(voice_for(voice).speak(text), "<i2").astype(np.float64) * 0.5


def line(
    caller: npt.NDArray[np.float64] | None, delay_ms: int, gain_db: float
) -> npt.NDArray[np.int16]:
    """The caller channel as the fork reads it off a G.711 line: the caller's words (from
    CALLER_AT_MS), the agent's echo ``delay_ms`` late and ``gain_db`` down, line noise."""
    agent = agent_voice()
    echo = np.zeros_like(agent)
    d = delay_ms * RATE // 1000
    echo[d:] = agent[:-d] * 10 ** (gain_db / 20)
    words = np.zeros_like(agent)
    if caller is not None:
        at = CALLER_AT_MS * RATE // 1000
        words[at : at + caller.size] = caller[: agent.size - at]
    noise = np.random.default_rng(3).normal(0, 10, agent.size)
    mixed = np.clip(words + echo + noise, -32768, 32767).astype("<i2").tobytes()
    return np.frombuffer(ulaw_decode(ulaw_encode(mixed)), "<i2")


def decisions(caller_channel: npt.NDArray[np.int16]) -> list[tuple[int, str]]:
    """(ms into the call, what the core did) while the agent says its sentence."""
    backchannels = load_phrases(ROOT / "prompts" / "bridge.json", "en").backchannel_words("en")
    core = TurnTaker(
        "call-1", TurnConfig(), BargeInDetector(), vad=vad().stream(), backchannels=backchannels
    )
    core.start(CallStarted(), 0.0)
    agent = agent_voice()
    mark = core.sentence(AGENT_TEXT)
    core.sentence_length(mark, agent.size * 1000 / RATE)
    core.audio_out(mark, 0.0)
    played = np.clip(agent, -32768, 32767).astype(np.int16)
    seen: list[tuple[int, str]] = []
    names = {Yield: "yield", Resume: "resume", StopPlayback: "stop"}
    for i in range(0, agent.size - FRAME, FRAME):
        for action in core.feed(caller_channel[i : i + FRAME], played[i : i + FRAME], i / RATE):
            name = names.get(type(action))
            if name is not None:
                seen.append((round(core.t_ms), name))
    return seen


@pytest.mark.parametrize("gain_db", [-6, -12, -18])
@pytest.mark.parametrize("delay_ms", [60, 150, 250])
def test_the_agents_own_echo_never_makes_it_yield(delay_ms: int, gain_db: int) -> None:
    assert decisions(line(None, delay_ms, gain_db)) == []


@needs_espeak
@pytest.mark.parametrize(
    ("voice", "word"),
    [
        ("espeak:en-gb", "uh-huh"),
        ("espeak:en-us", "okay"),
        ("espeak:en-gb-scotland", "yeah"),
        ("espeak:en-us+f3", "right"),
        ("espeak:en-gb", "mm-hmm"),
    ],
)
def test_a_backchannel_over_echo_makes_the_agent_yield_then_resume(voice: str, word: str) -> None:
    seen = decisions(line(speech(voice, word), 150, -12))
    assert [name for _, name in seen] == ["yield", "resume"], seen
    yield_at = seen[0][0]
    assert CALLER_AT_MS < yield_at <= CALLER_AT_MS + 150  # quiet within a few frames


@needs_espeak
@pytest.mark.parametrize(
    ("voice", "question"),
    [
        ("espeak:en-gb", "Sorry to interrupt, where exactly is the clinic?"),
        ("espeak:en-us+f3", "Wait, how much does that cost?"),
    ],
)
def test_a_question_over_the_agent_makes_it_yield_then_stop(voice: str, question: str) -> None:
    seen = decisions(line(speech(voice, question), 150, -12))
    assert [name for _, name in seen] == ["yield", "stop"], seen
    assert seen[0][0] <= CALLER_AT_MS + 150


def test_resumption_starts_at_the_pause_before_the_cut_word() -> None:
    rate = 16000
    word = (np.sin(2 * np.pi * 200 * np.arange(rate * 3 // 10) / rate) * 8000).astype("<i2")
    pause = np.zeros(rate // 10, dtype="<i2")
    pcm = np.concatenate([word, pause, word, pause, word]).tobytes()  # words at 0, 400, 800 ms
    # Cut 150 ms into the second word: taken up from 20 ms before it, in the pause.
    assert resume_point(pcm, rate, 550) / 2 / rate * 1000 == pytest.approx(380, abs=10)
    # Cut in a pause: from that pause.
    assert resume_point(pcm, rate, 750) / 2 / rate * 1000 == pytest.approx(730, abs=10)
    # The very start, and a point past the end of the sentence.
    assert resume_point(pcm, rate, 0) == 0
    assert resume_point(pcm, rate, 5000) == len(pcm)


def test_resumption_without_a_pause_backs_up_to_the_quietest_moment() -> None:
    rate = 16000
    t = np.arange(rate) / rate
    level = 6000 + 4000 * np.cos(2 * np.pi * 2 * t)  # never quiet; quietest at 250 and 750 ms
    pcm = (np.sin(2 * np.pi * 200 * t) * level).astype("<i2").tobytes()
    start_ms = resume_point(pcm, rate, 900) / 2 / rate * 1000
    assert 700 <= start_ms <= 760
