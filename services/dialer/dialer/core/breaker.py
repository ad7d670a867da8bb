"""The two reasons a campaign pauses itself: a failing trunk and too many abandoned calls.

``TrunkBreaker`` watches the share of network failures among a trunk's recent originates over
a sliding window; it trips when that share reaches ``ratio`` and recovers by itself once the
failures slide out of the window. ``AbandonTracker`` counts a campaign's abandoned calls among
its answered ones against the 3% limit of the TCPA's safe harbour (47 CFR 64.1200(a)(7)).
Both say why in a sentence the console shows, and both are fed time and never read a clock.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from callkit.contracts import outcome as outcomes

#: The TCPA's two-second rule: a live answer must hear the agent within 2 s.
ABANDON_AFTER_S: Final = 2.0


def is_abandoned(*, first_audio_after_s: float | None, agent_dropped: bool) -> bool:
    """Whether an answered call counts as abandoned: the agent's first audio came later than
    2 s after the answer (or never), or the agent side dropped the call."""
    return agent_dropped or first_audio_after_s is None or first_audio_after_s > ABANDON_AFTER_S


def agent_heard_after_ms(outcome: outcomes.CallOutcome) -> float | None:
    """How long the person waited for the agent: from the answer to its first audio, or, when
    the agent listened first (answering-machine detection on a person who said "Hello?"), from
    the end of their greeting to the opening (the call's first voice-to-voice time), as the
    two-second rule counts it."""
    latency = outcome.latency
    amd = outcome.amd
    if amd is not None and amd.cue in ("short_greeting", "reply_to_prompt") and latency.v2v_ms:
        spoke_first = (
            latency.first_audio_ms is not None and latency.first_audio_ms <= amd.verdict_ms
        )
        if not spoke_first:
            return latency.v2v_ms[0]
    return latency.first_audio_ms


class TrunkBreaker:
    """Trips when at least ``ratio`` of the last ``window_s`` seconds' calls (at least
    ``min_calls`` of them) failed on the trunk."""

    def __init__(self, window_s: float = 120, ratio: float = 0.5, min_calls: int = 6) -> None:
        if window_s <= 0 or not 0 < ratio <= 1 or min_calls < 1:
            raise ValueError(
                f"expected window_s > 0, 0 < ratio <= 1, min_calls >= 1; got {window_s}, "
                f"{ratio}, {min_calls}"
            )
        self.window_s = window_s
        self.ratio = ratio
        self.min_calls = min_calls
        self._calls: deque[tuple[float, bool]] = deque()

    def record(self, now_s: float, failed: bool) -> None:
        """One originate's end at ``now_s``: ``failed`` when its cause is a trunk failure."""
        self._calls.append((now_s, failed))
        self._slide(now_s)

    def tripped(self, now_s: float) -> bool:
        calls, failures = self._counts(now_s)
        return calls >= self.min_calls and failures >= self.ratio * calls

    def reason(self, now_s: float) -> str | None:
        """Why the breaker is tripped at ``now_s``, or None when it is not."""
        if not self.tripped(now_s):
            return None
        calls, failures = self._counts(now_s)
        return f"{failures} of {calls} calls failed on the trunk in the last {self.window_s:g} s"

    def _counts(self, now_s: float) -> tuple[int, int]:
        self._slide(now_s)
        return len(self._calls), sum(failed for _, failed in self._calls)

    def _slide(self, now_s: float) -> None:
        while self._calls and self._calls[0][0] <= now_s - self.window_s:
            self._calls.popleft()


class AbandonTracker:
    """A campaign's abandon rate among answered calls; ``over`` once it exceeds ``threshold``
    with at least ``min_answered`` answered calls (fewer say nothing about the rate).

    ``answered`` and ``abandoned`` start from counts kept elsewhere, so a restarted dialer
    goes on with the campaign's rate.
    """

    def __init__(
        self,
        threshold: float = 0.03,
        min_answered: int = 20,
        *,
        answered: int = 0,
        abandoned: int = 0,
    ) -> None:
        if not 0 <= threshold < 1 or min_answered < 1 or not 0 <= abandoned <= answered:
            raise ValueError(
                f"expected 0 <= threshold < 1, min_answered >= 1, 0 <= abandoned <= answered; "
                f"got {threshold}, {min_answered}, {abandoned}, {answered}"
            )
        self.threshold = threshold
        self.min_answered = min_answered
        self.answered = answered
        self.abandoned = abandoned

    def record(self, *, answered: bool = True, abandoned: bool) -> None:
        """One finished call; an unanswered call changes nothing (the rate is of live answers)."""
        if abandoned and not answered:
            raise ValueError("a call that was never answered cannot be abandoned")
        if answered:
            self.answered += 1
            self.abandoned += abandoned

    @property
    def rate(self) -> float:
        return self.abandoned / self.answered if self.answered else 0.0

    @property
    def over(self) -> bool:
        return self.answered >= self.min_answered and self.rate > self.threshold

    @property
    def reason(self) -> str | None:
        """Why the campaign must pause, or None while the rate is within the limit."""
        if not self.over:
            return None
        return (
            f"{self.abandoned} of {self.answered} answered calls were abandoned "
            f"({self.rate:.1%}), above the {self.threshold:.0%} limit"
        )
