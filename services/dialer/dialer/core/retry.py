"""When a contact is tried next after an attempt's outcome, or whether it is finished.

One retry budget per contact: ``max_attempts`` counts every attempt whatever its outcome, but
for the callee's own requests to be called back. Those are kept on top of the budget, up to
``max_callbacks`` of them per contact: a callee who asks for a callback on the contact's last
attempt is called back, and a callback never eats the attempts left for a number nobody answers;
past ``max_callbacks`` a request counts like any attempt, so a callee who keeps putting the call
off is called at most ``max_attempts + max_callbacks`` times. A network failure is retried once
more at most, so a broken number does not eat the budget of a trunk outage. The delay only says
the earliest moment; ``next_eligible`` moves it on to the contact's calling window and frequency
caps.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from callkit.contracts.outcome import STATUSES
from callkit.errors import InvalidInput
from dialer.core.caps import cap_allows
from dialer.core.windows import next_open, utc
from dialer.spec import CallingWindows, FrequencyCaps, RetryPolicy

#: Outcomes that end the contact whatever the policy: the person was reached and answered for
#: themselves, the number cannot be called, or it must not be.
FINAL_OUTCOMES: Final = frozenset(
    {
        "booked",
        "not_interested",
        "opt_out",
        "transferred",
        "wrong_number",
        "incomplete",  # reached, and hung up before the end: calling again would pester them
        "invalid_number",
        "rejected",
        "skipped_dnc",
    }
)

#: How many times a network failure is retried per contact.
FAILED_RETRIES: Final = 1


def is_final(outcome: str) -> bool:
    """Whether ``outcome`` ends the contact whatever its retry policy and budget."""
    _known(outcome)
    return outcome in FINAL_OUTCOMES


def budget(policy: RetryPolicy, callbacks: int) -> int:
    """How many attempts a contact may have once its callee has asked for ``callbacks``
    callbacks: ``max_attempts``, and one more per request up to ``max_callbacks``."""
    return policy.max_attempts + min(max(callbacks, 0), policy.max_callbacks)


def next_attempt(
    policy: RetryPolicy,
    outcome: str,
    *,
    attempts: int,
    failed_retries: int,
    now: datetime,
    callbacks_before: int = 0,
) -> datetime | None:
    """The earliest UTC instant for the contact's next attempt; None: the contact is finished.

    ``attempts``: attempts made so far, the one that just ended included; ``failed_retries``:
    how many earlier attempts were retries after a ``failed`` outcome; ``callbacks_before``:
    how many earlier attempts ended with the callee asking for a callback.
    """
    callbacks = callbacks_before + (outcome == "callback")
    if is_final(outcome) or attempts >= budget(policy, callbacks):
        return None
    delay_min: float | None
    match outcome:
        case "busy":
            delay_min = policy.busy_after_min
        case "no_answer":
            delay_min = policy.no_answer_after_min
        case "failed":
            delay_min = policy.failed_after_min if failed_retries < FAILED_RETRIES else None
        case "callback":
            delay_min = policy.callback_after_min
        case "voicemail":
            delay_min = policy.voicemail_after_min
        case _:
            raise AssertionError(f"outcome {outcome!r} has no retry rule")
    if delay_min is None:
        return None
    return utc(now) + timedelta(minutes=delay_min)


def next_eligible(
    not_before: datetime,
    *,
    windows: CallingWindows,
    tz: ZoneInfo,
    caps: FrequencyCaps,
    past: Sequence[datetime],
) -> datetime | None:
    """The first UTC instant at or after ``not_before`` when the contact's window is open and
    its frequency caps allow an attempt; None when no such instant comes within the window's
    horizon (a year).

    ``past``: the number's earlier attempts, across campaigns.
    """
    moment = utc(not_before)
    # Each round moves forward to the caps' release, then to the window's opening; caps only
    # release as time passes, so this settles in a few rounds. The bound guards a window that
    # keeps closing exactly as the caps release.
    for _ in range(16):
        opened = next_open(windows, tz, moment)
        if opened is None:
            return None
        blocked_until = cap_allows(caps, past, opened)
        if blocked_until is None:
            return opened
        moment = blocked_until
    return None


def _known(outcome: str) -> None:
    if outcome not in STATUSES:
        raise InvalidInput(
            f"unknown outcome {outcome!r}: expected one of {', '.join(sorted(STATUSES))}"
        )
