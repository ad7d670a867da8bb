"""The echo canceller on frame tables: the caller's quiet syllables survive, the agent's echo does not."""

from __future__ import annotations

import numpy as np
import pytest

from callkit.audio import ulaw_decode, ulaw_encode
from fs_bridge.echo import FRAME, RATE, EchoCanceller

# A timeline segment: (lasting ms, the caller's voice level, the agent's voice level), as RMS.
Segment = tuple[int, float, float]
AGENT = 3000.0  # the agent's voice on the played channel (about -21 dBFS)
LOUD = 2500.0  # the caller speaking up
QUIET = 150.0  # a quiet syllable: below the barge-in detector's speech level and the echo test


def voice(ms: int, level: float, seed: int) -> np.ndarray:
    """Speech-like audio: a wandering pitch with its harmonics and some breath, in syllables."""
    rng = np.random.default_rng(seed)
    n = ms * RATE // 1000
    f0 = 110 + 60 * np.cumsum(rng.normal(0, 0.002, n)).clip(-1, 1)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    x = sum(rng.uniform(0.2, 1.0) / k * np.sin(k * phase) for k in range(1, 12))
    x = x + 0.3 * rng.normal(0, 1, n)
    syllables = (np.sin(2 * np.pi * 4 * np.arange(n) / RATE + rng.uniform(0, 6)) > -0.3).astype(
        float
    )
    x = x * syllables
    return np.asarray(x * level / max(float(np.sqrt(np.mean(x * x))), 1e-9))


def timeline(segments: list[Segment], seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The caller's own voice and the played channel, segment after segment."""
    caller, played = [], []
    for i, (ms, caller_level, agent_level) in enumerate(segments):
        n = ms * RATE // 1000
        caller.append(voice(ms, caller_level, seed * 100 + i) if caller_level else np.zeros(n))
        played.append(voice(ms, agent_level, seed * 100 + 50 + i) if agent_level else np.zeros(n))
    return np.concatenate(caller), np.concatenate(played)


def line(
    caller: np.ndarray, played: np.ndarray, delay_ms: int, gain_db: float, noise: float = 10.0
) -> np.ndarray:
    """What the fork reads from a G.711 line: the caller, the agent's echo, some noise."""
    rng = np.random.default_rng(7)
    echo = np.zeros_like(played)
    if delay_ms:
        d = delay_ms * RATE // 1000
        echo[d:] = played[:-d] * 10 ** (gain_db / 20)
    mixed = np.clip(caller + echo + rng.normal(0, noise, caller.size), -32768, 32767)
    coded = ulaw_decode(ulaw_encode(mixed.astype("<i2").tobytes()))
    return np.frombuffer(coded, "<i2")


def run(canceller: EchoCanceller, heard: np.ndarray, played: np.ndarray) -> list[np.ndarray]:
    """The frames the recognizer gets."""
    pcm = played.clip(-32768, 32767).astype(np.int16)
    return [
        np.frombuffer(
            canceller.process(heard[i : i + FRAME].astype(np.int16), pcm[i : i + FRAME]), "<i2"
        ).astype(float)
        for i in range(0, heard.size - FRAME + 1, FRAME)
    ]


def level(frames: list[np.ndarray]) -> float:
    x = np.concatenate(frames) if frames else np.zeros(1)
    return float(np.sqrt(np.mean(x * x)))


def frames_of(x: np.ndarray, first_ms: int, last_ms: int) -> list[np.ndarray]:
    return [x[i : i + FRAME].astype(float) for i in range(first_ms * 16, last_ms * 16, FRAME)]


def test_without_line_echo_the_callers_quiet_syllables_pass_untouched() -> None:
    """The call the old gate damaged: no echo, the agent talking, the caller answering softly."""
    caller, played = timeline([(2000, 0, AGENT), (3000, QUIET, AGENT), (1000, LOUD, AGENT)])
    heard = line(caller, played, delay_ms=0, gain_db=0)
    canceller = EchoCanceller()
    out = run(canceller, heard, played)
    assert canceller.no_echo
    assert canceller.path is None
    answer = slice(2000 // 20, 6000 // 20)
    sent = np.concatenate(out[answer])
    assert np.array_equal(sent, heard[2000 * 16 : 2000 * 16 + sent.size])


@pytest.mark.parametrize(
    ("delay_ms", "gain_db"),
    [(60, -6), (120, -12), (180, -6), (250, -20), (90, -20), (250, -9)],
)
def test_the_agents_echo_does_not_pass(delay_ms: int, gain_db: float) -> None:
    _, played = timeline([(6000, 0, AGENT)], seed=delay_ms)
    heard = line(np.zeros_like(played), played, delay_ms, gain_db)
    canceller = EchoCanceller()
    out = run(canceller, heard, played)
    assert canceller.path is not None
    assert abs(canceller.path.delay_ms - delay_ms) <= 1
    assert abs(canceller.path.gain_db - gain_db) <= 1
    echo = frames_of(heard, 1000, 6000)
    # After the first second, what reaches the recognizer is at least 30 dB below the echo.
    assert level(out[1000 // 20 :]) < level(echo) * 10 ** (-30 / 20)


@pytest.mark.parametrize(
    ("delay_ms", "gain_db", "quiet"), [(60, -6, 2 * QUIET), (150, -12, QUIET), (250, -20, QUIET)]
)
def test_quiet_syllables_over_the_agents_echo_survive(
    delay_ms: int, gain_db: float, quiet: float
) -> None:
    """The caller answers softly while the agent talks and the line returns its voice: every
    syllable 14 dB or less below the echo reaches the recognizer, and the echo does not."""
    segments = [(2000, 0, AGENT), (3000, quiet, AGENT), (1000, LOUD, AGENT)]
    caller, played = timeline(segments, seed=3)
    heard = line(caller, played, delay_ms, gain_db)
    canceller = EchoCanceller()
    out = run(canceller, heard, played)
    answer = slice(2000 * 16, 6000 * 16)
    got = np.concatenate(out[2000 // 20 : 6000 // 20])
    d = delay_ms * RATE // 1000
    echo = np.concatenate([np.zeros(d), played[:-d]])[answer] * 10 ** (gain_db / 20)
    own = caller[answer]
    # Besides the caller's voice the recognizer gets the line's own noise and codec error (what
    # offline transcription of the channel hears too), and nearly nothing of the echo.
    line_error = heard[answer] - own - echo
    assert np.sqrt(np.mean((got - own) ** 2)) < 1.25 * np.sqrt(np.mean(line_error**2))
    full_echo = np.concatenate([np.zeros(d), played[:-d]]) * 10 ** (gain_db / 20)
    syllables = [
        i
        for i in range(2000 // 20, 6000 // 20)
        if level([caller[i * FRAME : (i + 1) * FRAME]])
        >= max(quiet / 4, level([full_echo[i * FRAME : (i + 1) * FRAME]]) * 10 ** (-14 / 20))
    ]
    held_back = [i for i in syllables if not np.any(out[i])]
    assert len(syllables) > 100
    assert held_back == []


def test_before_the_line_is_known_only_what_echo_could_explain_is_held_back() -> None:
    """The first moments of the greeting: no estimate yet. Loud speech goes through."""
    caller, played = timeline([(400, LOUD, AGENT)])
    heard = line(caller, played, delay_ms=0, gain_db=0)
    canceller = EchoCanceller()
    out = run(canceller, heard, played)
    assert canceller.path is None
    assert not canceller.no_echo
    sent = [i for i, frame in enumerate(out) if np.any(frame)]
    loud = [i for i in range(len(out)) if level([caller[i * FRAME : (i + 1) * FRAME]]) > AGENT / 2]
    assert set(loud) <= set(sent)


def test_when_the_agent_is_silent_everything_passes() -> None:
    caller, played = timeline([(3000, QUIET, 0), (1000, LOUD, 0)])
    heard = line(caller, played, delay_ms=120, gain_db=-6)
    out = run(EchoCanceller(), heard, played)
    assert np.array_equal(np.concatenate(out), heard[: len(out) * FRAME])


def test_the_path_survives_the_caller_talking_over_the_agent() -> None:
    """Double talk lowers the correlation; the estimate from before it holds."""
    segments = [(2000, 0, AGENT), (4000, LOUD, AGENT), (2000, 0, AGENT)]
    caller, played = timeline(segments, seed=5)
    heard = line(caller, played, delay_ms=120, gain_db=-12)
    canceller = EchoCanceller()
    out = run(canceller, heard, played)
    assert canceller.path is not None
    assert abs(canceller.path.delay_ms - 120) <= 1
    echo_after = frames_of(heard, 6500, 8000)
    assert level(out[6500 // 20 : 8000 // 20]) < level(echo_after) * 10 ** (-30 / 20)


@pytest.mark.parametrize("delay_ms", [150, 250])
def test_a_new_sentence_after_a_pause_keeps_the_echo_path(delay_ms: int) -> None:
    """The agent talks, pauses while the caller answers, and starts again loud: for the first
    moments of the new sentence its echo has not come back yet (it is 250 ms late), which is no
    proof that the line returns none; the path stays and the echo that follows never passes."""
    segments = [(3000, 0, AGENT), (2000, LOUD, 0), (1200, 0, 0), (2000, 0, 3 * AGENT)]
    caller, played = timeline(segments, seed=5)
    heard = line(caller, played, delay_ms, -6)
    canceller = EchoCanceller()
    out = run(canceller, heard, played)
    assert canceller.path is not None
    assert not canceller.no_echo
    arrives = 6200 + delay_ms
    echo = frames_of(heard, arrives, 8200)
    # From the moment the new sentence's echo arrives, at least 30 dB of it is taken out.
    assert level(out[arrives // 20 :]) < level(echo) * 10 ** (-30 / 20)
