"""The hallucination guard on what whisper base really wrote, with the evidence it really gave.

Each row is a measured final: whisper base (int8) through the gateway's session (its VAD, its
padding) on espeak-ng callers over G.711, clean, or cut to fragments the way the bridge once
sent speech over the agent (frames under an energy gate zeroed). ``Evidence`` is (no-speech
probability, average log probability, compression ratio, VAD speech ratio).
"""

from __future__ import annotations

import pytest

from asr_gateway.postprocess import Evidence, hallucination_reason, loops

# Invented text: words the caller never said, on audio with little or no speech left in it.
PHANTOMS = [
    # "My name is Helen Carter." cut to its loudest fragments.
    ("And the last one.", Evidence(0.505, -1.651, 0.68, 0.136)),
    ("and we're going to start the", Evidence(0.564, -1.817, 0.778, 0.136)),
    # "Tomorrow would be good." (en-us+f3) cut the same way.
    (
        "You're not lovin' me, you're lovin' me, you're lovin' me",
        Evidence(0.29, -0.853, 1.6, 0.488),
    ),
    ("What's this?", Evidence(0.324, -0.654, 0.6, 0.059)),
    # Phantoms heard in calls whose evidence was not kept: checked at the evidence of real
    # answers below ("Tomorrow will be good", "The more I will be good."), which they must not
    # need to beat.
    (
        "In the next video, I will show you the new design of the new design.",
        Evidence(0.216, -0.911, 0.724, 0.581),
    ),
    ("See you in the next video.", Evidence(0.469, -0.934, 0.75, 0.425)),
]

# Real answers, some misheard: the guard must pass them (a misheard answer is the dialogue's to
# repair; a dropped one leaves the caller unanswered).
REAL = [
    ("Yes.", Evidence(0.353, -0.558, 0.333, 0.19)),
    ("Yes.", Evidence(0.478, -0.663, 0.333, 0.158)),
    ("Yeah.", Evidence(0.449, -0.597, 0.385, 0.111)),
    ("No.", Evidence(0.124, -0.542, 0.273, 0.15)),
    ("No.", Evidence(0.254, -0.599, 0.273, 0.158)),
    ("Yes, please.", Evidence(0.338, -0.472, 0.6, 0.27)),
    ("Tomorrow will be good", Evidence(0.216, -0.911, 0.724, 0.581)),
    ("The more I will be good.", Evidence(0.469, -0.934, 0.75, 0.425)),
    ("My name is Helen Carter.", Evidence(0.214, -0.673, 0.75, 0.673)),
    ("My name is Ellen Todd.", Evidence(0.277, -0.995, 0.733, 0.5)),
    ("In the middle.", Evidence(0.408, -1.069, 0.636, 0.556)),
    ("For about three weeks.", Evidence(0.468, -0.541, 0.733, 0.415)),
    ("My knees hurt when I walk.", Evidence(0.462, -0.944, 0.765, 0.553)),
    ("I did about two weeks ago.", Evidence(0.218, -0.745, 0.765, 0.431)),
]


@pytest.mark.parametrize(("text", "evidence"), PHANTOMS)
def test_text_invented_on_fragments_and_silence_is_dropped(text: str, evidence: Evidence) -> None:
    assert hallucination_reason(text, evidence) is not None


@pytest.mark.parametrize(("text", "evidence"), REAL)
def test_real_answers_pass(text: str, evidence: Evidence) -> None:
    assert hallucination_reason(text, evidence) is None


def test_the_models_doubt_decides_not_the_words() -> None:
    """The same words pass on firm evidence and are dropped on weak evidence."""
    firm = Evidence(0.1, -0.4, 1.1, 0.8)
    guessing = Evidence(0.5, -1.6, 1.1, 0.2)
    assert hallucination_reason("and we're going to start the", firm) is None
    assert hallucination_reason("and we're going to start the", guessing) is not None
    # A caller who corrects themselves repeats words; said clearly, that is kept.
    repeated = "I would like to book, I would like to book an MRI"
    assert hallucination_reason(repeated, firm) is None
    assert hallucination_reason(repeated, Evidence(0.4, -0.9, 1.5, 0.4)) is not None
    # Video-caption phrases need weak evidence too.
    assert hallucination_reason("See you in the next video.", firm) is None


@pytest.mark.parametrize(
    ("text", "looping"),
    [
        ("in the next video i will show you the new design of the new design", True),
        ("youre not lovin me youre lovin me youre lovin me", True),
        ("five five five one two three five five five", False),  # a number read out
        ("my name is helen carter", False),
        ("no no no", False),
    ],
)
def test_loops(text: str, looping: bool) -> None:
    assert loops(text) is looping
