"""Word errors between what a scripted caller said and what a recognizer wrote of it.

Both sides are normalized alike before counting, so that writing differences are not errors:
lower case, punctuation and hyphens dropped, spoken numbers as digits and every number read
digit by digit ("forty five" = "45" = "4 5", "555-123-4567" = "five five five ..."), common
contractions expanded ("I'm" = "I am"). Errors are the word-level edit distance (substitutions,
insertions, deletions).
"""

from __future__ import annotations

import re

from callkit.spoken import numbers_to_digits

_CONTRACTIONS = [
    (re.compile(r"\bcan't\b"), "can not"),
    (re.compile(r"\bwon't\b"), "will not"),
    (re.compile(r"n't\b"), " not"),
    (re.compile(r"'m\b"), " am"),
    (re.compile(r"'re\b"), " are"),
    (re.compile(r"'ve\b"), " have"),
    (re.compile(r"'ll\b"), " will"),
    (re.compile(r"'d\b"), " would"),
    (re.compile(r"\b(it|that|there|what|where|here|who|he|she)'s\b"), r"\1 is"),
    (re.compile(r"\blet's\b"), "let us"),
    (re.compile(r"\bok\b"), "okay"),
]


def words(text: str) -> list[str]:
    """The words of ``text`` as they are compared."""
    text = numbers_to_digits(text.replace("’", "'")).lower()
    for pattern, expanded in _CONTRACTIONS:
        text = pattern.sub(expanded, text)
    text = re.sub(r"(\d)", r" \1 ", text)
    return re.sub(r"[^a-z0-9' ]+", " ", text).replace(" '", " ").replace("' ", " ").split()


def word_errors(reference: list[str], hypothesis: list[str]) -> int:
    """Substitutions, insertions and deletions that turn ``reference`` into ``hypothesis``."""
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        diagonal, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (ref != hyp))
    return row[-1]


def wer(reference: str, hypothesis: str) -> dict[str, float | int | None]:
    """Errors, reference words and their ratio (None when nothing was said)."""
    ref = words(reference)
    errors = word_errors(ref, words(hypothesis))
    return {
        "errors": errors,
        "words": len(ref),
        "wer": round(errors / len(ref), 3) if ref else None,
    }
