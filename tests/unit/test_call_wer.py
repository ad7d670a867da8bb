"""Word errors in callsim's report: writing differences are not errors, misheard words are."""

from __future__ import annotations

import pytest

from callsim.wer import wer, word_errors, words


@pytest.mark.parametrize(
    ("said", "written"),
    [
        ("I am forty five and I weigh eighty kilos.", "I'm 45 and I weigh 80 kilos"),
        ("five five five, one two three, four five six seven", "555-123-4567"),
        ("No, I have not.", "no i haven't"),
        ("Okay, Tuesday please.", "OK. Tuesday, please!"),
    ],
)
def test_the_same_words_written_differently_are_no_errors(said: str, written: str) -> None:
    assert wer(said, written)["errors"] == 0


def test_misheard_words_count_once_each() -> None:
    said = "My name is Helen Carter."
    assert wer(said, "In the next video, I will show you the new design.")["errors"] == 11
    assert wer(said, "My name is Ellen Carter")["errors"] == 1
    assert wer(said, "")["errors"] == 5
    assert wer(said, "My name is Helen Carter.")["wer"] == 0.0


def test_edit_distance() -> None:
    assert word_errors(words("a b c d"), words("a x c")) == 2
    assert word_errors([], words("phantom words")) == 2
    assert wer("", "anything")["wer"] is None
