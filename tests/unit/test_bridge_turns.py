"""The bridge's turn-taking decisions on explicit timelines: when the agent is stopped, and what
the caller is reported to have heard of a reply that was cut."""

from __future__ import annotations

import pytest

from fs_bridge.bargein import FRAME_MS, BargeInConfig, BargeInDetector
from fs_bridge.session import Spoken, heard_text

AGENT = 3000.0  # the agent's voice on the played channel
CALLER = 2500.0  # the caller's voice
QUIET = 30.0  # line noise
# A timeline segment: (lasting ms, caller level, played level, agent speaking)
Segment = tuple[int, float, float, bool]


def stops(segments: list[Segment], config: BargeInConfig | None = None) -> list[tuple[int, str]]:
    """(ms from the start, end of the frame; decision) for each yield, resumption and
    interruption; an interruption stops the agent until the next segment says it speaks."""
    detector = BargeInDetector(config or BargeInConfig(min_span_ms=700, min_voiced_ms=400))
    at: list[tuple[int, str]] = []
    t = 0
    for ms, caller, played, speaking in segments:
        for _ in range(ms // FRAME_MS):
            t += FRAME_MS
            decision = detector.feed(detector.judge(caller, played), speaking)
            if decision is not None:
                at.append((t, decision))
            speaking = speaking and decision != "interrupt"
    return at


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        pytest.param(
            [(300, QUIET, AGENT, True), (1000, CALLER, AGENT, True)],
            [(340, "yield"), (1000, "interrupt")],
            id="caller speaks over the agent: quiet 40 ms after they began, stopped at 700 ms",
        ),
        pytest.param(
            [(200, CALLER, QUIET, False), (1000, CALLER, AGENT, True)],
            [(220, "yield"), (700, "interrupt")],
            id="caller began just before the reply: quiet at its first frame, their speech so "
            "far counts",
        ),
        pytest.param(
            [(1000, CALLER, AGENT, True), (1000, CALLER, AGENT, True)],
            [(40, "yield"), (700, "interrupt"), (1020, "yield"), (1400, "interrupt")],
            id="a caller who keeps talking stops each new sentence once, not every frame",
        ),
        pytest.param(
            [(200, CALLER, AGENT, True), (300, QUIET, AGENT, True), (600, CALLER, AGENT, True)],
            [(40, "yield"), (700, "interrupt")],
            id="a cough, a short pause, then words: one interruption, counted from the cough",
        ),
        pytest.param(
            [(200, CALLER, AGENT, True), (500, QUIET, AGENT, True), (1000, CALLER, AGENT, True)],
            [(40, "yield"), (600, "resume"), (740, "yield"), (1400, "interrupt")],
            id="a cough, a long pause, then words: resumed after the cough, stopped by the words",
        ),
        pytest.param(
            [(600, CALLER, AGENT, True), (1000, QUIET, AGENT, True)],
            [(40, "yield"), (1000, "resume")],
            id="a 600 ms 'okay' over the agent is a backchannel: resumed",
        ),
        pytest.param(
            [(1000, QUIET, AGENT, True), (1500, CALLER, QUIET, False)],
            [],
            id="speaking after the agent finished is a turn, not an interruption",
        ),
    ],
)
def test_when_the_agent_yields_resumes_and_stops(
    segments: list[Segment], expected: list[tuple[int, str]]
) -> None:
    assert stops(segments) == expected


def test_a_longer_minimum_span_lets_longer_backchannels_through() -> None:
    talk = [(900, CALLER, AGENT, True), (600, QUIET, AGENT, True)]
    assert stops(talk, BargeInConfig(min_span_ms=700)) == [(40, "yield"), (700, "interrupt")]
    assert stops(talk, BargeInConfig(min_span_ms=1000)) == [(40, "yield"), (1300, "resume")]


def test_the_echo_of_the_agents_last_words_does_not_stop_the_next_sentence() -> None:
    # The agent's sentence ends at 1000 ms; its echo (-12 dB, 100 ms late) is still on the
    # caller's channel while the next sentence starts at 1100 ms.
    echo = AGENT * 0.25 * 0.9
    segments: list[Segment] = [
        (100, QUIET, AGENT, True),
        (900, echo, AGENT, True),
        (100, echo, QUIET, True),
        (100, QUIET, QUIET, True),
        (1000, echo, AGENT, True),
    ]
    assert stops(segments) == []


# ------------------------------------------------------------------ what the caller heard

# The reply being played: (text, duration ms). The first sentence starts playing at 1000 ms.
REPLY = [
    ("I can book an MRI of the knee.", 2000),  # 8 words, 1000-3000 ms
    ("It costs four hundred fifty dollars.", 1800),  # 6 words, from its own start
    ("Shall I book it?", 1200),
]


def reply(played: int, started: dict[int, float]) -> list[Spoken]:
    """The reply with its first ``played`` sentences reported played out, and start times."""
    return [
        Spoken(text, f"s{i + 1}", ms, started_ms=started.get(i), played=i < played)
        for i, (text, ms) in enumerate(REPLY)
    ]


@pytest.mark.parametrize(
    ("cut_at_ms", "played", "started", "heard"),
    [
        pytest.param(900, 0, {}, "", id="before any audio played"),
        pytest.param(1000, 0, {0: 1000}, "", id="at the first sample"),
        pytest.param(1999, 0, {0: 1000}, "I can book", id="half-way: the words fully heard"),
        pytest.param(2500, 0, {0: 1000}, "I can book an MRI of", id="three quarters"),
        pytest.param(
            3100,
            1,
            {0: 1000, 1: 3100},
            "I can book an MRI of the knee.",
            id="between sentences: the whole first one",
        ),
        pytest.param(
            4000,
            1,
            {0: 1000, 1: 3100},
            "I can book an MRI of the knee. It costs four",
            id="into the price: 900 of its 1800 ms",
        ),
        pytest.param(
            9000,
            1,
            {0: 1000, 1: 3100},
            "I can book an MRI of the knee. It costs four hundred fifty dollars.",
            id="playout overdue: the mark is late, the sentence counts whole",
        ),
        pytest.param(
            4000,
            0,
            {0: 1000, 1: 3100},
            "I can book an MRI of the knee.",
            id="the first sentence's mark has not arrived: nothing after it counts",
        ),
    ],
)
def test_what_the_caller_heard_of_a_cut_reply(
    cut_at_ms: float, played: int, started: dict[int, float], heard: str
) -> None:
    assert heard_text(reply(played, started), cut_at_ms) == heard


def test_a_sentence_whose_length_is_unknown_counts_only_once_played() -> None:
    streaming = [Spoken("One moment please.", "s1", 0.0, started_ms=0.0)]
    assert heard_text(streaming, 5000) == ""
    streaming[0].played = True
    assert heard_text(streaming, 5000) == "One moment please."
