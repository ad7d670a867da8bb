"""Partials that do not flicker: commit the words that consecutive hypotheses agree on.

The LocalAgreement-2 policy of whisper_streaming: a word becomes stable once two successive
hypotheses of the same utterance both contain it at the same position of their common prefix.
Committed words are never taken back within the utterance.
"""

from __future__ import annotations

import re


def _norm(word: str) -> str:
    return re.sub(r"[^\w']", "", word.lower())


class LocalAgreement:
    def __init__(self) -> None:
        self.committed: list[str] = []
        self._previous: list[str] = []

    def update(self, hypothesis: str) -> tuple[str, str]:
        """Feed the newest hypothesis; returns (stable_text, full_text)."""
        words = hypothesis.split()
        # Words past the committed ones; if the newest hypothesis rewrote committed words, the
        # commitment stands and only its remainder is considered.
        tail = words[len(self.committed) :]
        prev_tail = self._previous[len(self.committed) :]
        agreed = 0
        for a, b in zip(prev_tail, tail, strict=False):
            if _norm(a) != _norm(b) or not _norm(a):
                break
            agreed += 1
        self.committed.extend(tail[:agreed])
        self._previous = self.committed + tail[agreed:]
        stable = " ".join(self.committed)
        full = " ".join(self.committed + tail[agreed:])
        return stable, full

    def reset(self) -> None:
        self.committed = []
        self._previous = []
