"""Sentence splitting for streaming synthesis: the first sentence is synthesized first.

A sentence ends at . ! ? or … followed by a space and a capital letter, digit or quote, or at a
line break. Abbreviations ("Dr.", "e.g."), decimals ("3.5"), prices ("$1,299.99") and times
("3:30 p.m.") do not end a sentence; "p.m." does when a new sentence plainly starts after it.
"""

from __future__ import annotations

import re

_NEVER_FINAL = {
    "dr",
    "mr",
    "mrs",
    "ms",
    "prof",
    "st",
    "ave",
    "rd",
    "blvd",
    "apt",
    "no",
    "vs",
    "approx",
    "jr",
    "sr",
    "e.g",
    "i.e",
    "etc",
    "fig",
    "dept",
    "mt",
    "ft",
    "inc",
    "ltd",
    "co",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "mon",
    "tue",
    "wed",
    "thu",
    "fri",
    "sat",
    "sun",
}
_WEEKDAYS_MONTHS = {
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
}
_BOUNDARY = re.compile(r"([.!?…]+[\"')\]]*)(\s+)(?=[\"'(\[]?[A-ZА-ЯЁ0-9])")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences, keeping each one's punctuation."""
    sentences: list[str] = []
    for paragraph in re.split(r"\n\s*", text):
        start = 0
        for m in _BOUNDARY.finditer(paragraph):
            end = m.end(1)
            before = paragraph[start : m.start(1) + 1]
            if m.group(1).startswith(".") and not _ends_sentence(before, paragraph[m.end() :]):
                continue
            sentences.append(paragraph[start:end].strip())
            start = m.end()
        tail = paragraph[start:].strip()
        if tail:
            sentences.append(tail)
    return [s for s in sentences if s]


def _ends_sentence(before: str, after: str) -> bool:
    """Whether the period at the end of ``before`` closes a sentence."""
    word = re.search(r"([\w.]+)\.$", before)
    token = word.group(1).lower() if word else ""
    if token in ("a.m", "p.m", "am", "pm"):
        # "at 3 p.m. Then…" ends; "at 3 p.m. Monday" does not.
        next_word = re.match(r"\W*(\w+)", after)
        return not (next_word and next_word.group(1).lower() in _WEEKDAYS_MONTHS)
    if token in _NEVER_FINAL:
        return False
    # Single initials ("J. Smith") and dotted acronyms ("U.S.") do not end a sentence.
    return not re.fullmatch(r"(?:[a-z]\.)*[a-z]", token)
