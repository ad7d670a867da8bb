"""The tidying every normalizer ends with: the spaces and commas its rules left behind."""

from __future__ import annotations

import re


def tidy(text: str) -> str:
    """One space between words, none before punctuation, no comma before another mark."""
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+([,.!?;:])", r"\1", text)
    text = re.sub(r",\s*([,.!?;:])", r"\1", text)
    return text.strip().rstrip(",").strip()
