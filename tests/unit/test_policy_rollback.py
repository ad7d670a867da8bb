"""The barge-in rollback, table by table: what stands of the agent's turn once the caller cut in."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy_engine.dialog.rollback import heard_in_full, roll_back
from policy_engine.script import load_script
from policy_engine.session import Line, Sentence, Session

SCRIPT = load_script(Path(__file__).parents[2] / "prompts" / "clinic")
RECOMMEND = Sentence(
    text="From what you describe, I would recommend an MRI of the knee.",
    state="recommend_study",
    source="say",
)
PRICE = Sentence(text="An MRI of the knee costs $450.", state="announce_price", source="say")
DECIDE = Sentence(text="Shall I book it for you?", state="ask_study_decision", source="say")
NOTED = Sentence(text="Noted.", state="ask_pain_character", source="phrase")
TURN = [RECOMMEND, PRICE, DECIDE]


@pytest.mark.parametrize(
    ("reply", "heard", "expected"),
    [
        (TURN, "", 0),
        (TURN, "From what you", 0),
        (TURN, RECOMMEND.text, 1),
        (TURN, RECOMMEND.text + " An MRI of the", 1),
        (TURN, f"{RECOMMEND.text} {PRICE.text}", 2),
        (TURN, f"{RECOMMEND.text} {PRICE.text} {DECIDE.text}", 3),
        # The bridge joins words with spaces; case and punctuation do not matter.
        (TURN, "from what you describe i would recommend an MRI of the knee an", 1),
        # A last word cut short is not heard.
        (TURN, RECOMMEND.text.removesuffix(" knee.") + " kne", 0),
        # Words that are not the reply's are not taken as heard, however long.
        (TURN, "x " * 40, 0),
        ([], "anything", 0),
    ],
)
def test_sentences_heard_in_full(reply: list[Sentence], heard: str, expected: int) -> None:
    assert heard_in_full(reply, heard) == expected


def _session(reply: list[Sentence]) -> Session:
    return Session(
        session_id="s",
        state="ask_study_decision",
        said=["greeting", "recommend_study", "announce_price"],
        asked={"ask_pain_character": 1, "ask_study_decision": 1},
        last_reply=reply,
        transcript=[
            Line(role="caller", text="No.", at=1.0),
            Line(role="agent", text=" ".join(s.text for s in reply), at=2.0),
        ],
    )


@pytest.mark.parametrize(
    ("reply", "heard", "state", "said", "asked", "kept"),
    [
        # Cut during the price: the recommendation stands, the price is said again.
        (
            TURN,
            RECOMMEND.text + " An MRI",
            "announce_price",
            ["greeting", "recommend_study"],
            {"ask_pain_character": 1, "ask_study_decision": 0},
            [RECOMMEND],
        ),
        # Cut at once: back to the recommendation, nothing of the turn stands.
        (
            TURN,
            "",
            "recommend_study",
            ["greeting"],
            {"ask_pain_character": 1, "ask_study_decision": 0},
            [],
        ),
        # Only the question was cut: it counts as not asked, the call stays there.
        (
            TURN,
            f"{RECOMMEND.text} {PRICE.text} Shall",
            "ask_study_decision",
            ["greeting", "recommend_study", "announce_price"],
            {"ask_pain_character": 1, "ask_study_decision": 0},
            [RECOMMEND, PRICE],
        ),
        # Heard in full: nothing rolls back.
        (
            TURN,
            " ".join(s.text for s in TURN),
            "ask_study_decision",
            ["greeting", "recommend_study", "announce_price"],
            {"ask_pain_character": 1, "ask_study_decision": 1},
            TURN,
        ),
        # A phrase cut short moves nothing: only script sentences say where the call was.
        (
            [NOTED],
            "",
            "ask_study_decision",
            ["greeting", "recommend_study", "announce_price"],
            {"ask_pain_character": 1, "ask_study_decision": 1},
            [],
        ),
    ],
    ids=["cut-in-price", "cut-at-once", "cut-in-question", "heard-all", "phrase-only"],
)
def test_the_call_goes_back_to_the_first_sentence_not_heard(
    reply: list[Sentence],
    heard: str,
    state: str,
    said: list[str],
    asked: dict[str, int],
    kept: list[Sentence],
) -> None:
    before = _session(reply)
    snapshot = before.model_copy(deep=True)
    after = roll_back(before, heard, SCRIPT.states)
    assert (after.state, after.said, after.asked, after.last_reply) == (state, said, asked, kept)
    assert after.transcript[-1].text == heard
    assert after.transcript[-1].interrupted
    assert before == snapshot  # the given session is left as it was


def test_a_caller_line_last_is_left_alone() -> None:
    session = _session(TURN)
    session.transcript.append(Line(role="caller", text="Wait.", at=3.0))
    after = roll_back(session, "", SCRIPT.states)
    assert [(line.text, line.interrupted) for line in after.transcript[-2:]] == [
        (" ".join(s.text for s in TURN), False),
        ("Wait.", False),
    ]
