"""How the stack retries: the shared retryability rule, exponential pauses with jitter, Retry-After.

Every retry loop takes the same decisions: only errors ``is_retryable`` accepts are tried again,
pauses double with random jitter (so a restarted service is not hit by every call at the same
instant), and a dependency's Retry-After is waited out as asked. A Retry-After longer than the
loop may wait ends the retries instead: retrying sooner than asked would only be refused again.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.wait import wait_base

from callkit.errors import is_retryable


def retry_after_of(exc: BaseException | None) -> float | None:
    """The Retry-After a failed attempt carried (``AgentError.retry_after_s``), if any."""
    value = getattr(exc, "retry_after_s", None)
    return float(value) if isinstance(value, int | float) else None


class wait_retry_after(wait_base):
    """The dependency's Retry-After when the failure carried one, else ``fallback``."""

    def __init__(self, fallback: wait_base) -> None:
        self.fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        after = retry_after_of(outcome.exception() if outcome is not None else None)
        return after if after is not None else self.fallback(retry_state)


def retrying(
    *,
    attempts: int,
    first_wait_s: float,
    max_wait_s: float,
    on_retry: Callable[[int], None] | None = None,
) -> AsyncRetrying:
    """Up to ``attempts`` tries of a retryable failure; pauses from ``first_wait_s`` doubling
    to ``max_wait_s``, each with up to ``first_wait_s`` of jitter, or the Retry-After asked.
    ``on_retry`` is told the number of each failed attempt about to be retried."""

    def worth_retrying(exc: BaseException) -> bool:
        after = retry_after_of(exc)
        return is_retryable(exc) and (after is None or after <= max_wait_s)

    return AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait_retry_after(
            wait_exponential_jitter(multiplier=first_wait_s, max=max_wait_s, jitter=first_wait_s)
        ),
        retry=retry_if_exception(worth_retrying),
        reraise=True,
        before_sleep=(lambda state: on_retry(state.attempt_number)) if on_retry else None,
    )


def jittered(seconds: float) -> float:
    """A reconnect pause spread over [seconds/2, seconds]: clients that lost a service at the
    same moment come back at different moments."""
    return seconds / 2 + random.uniform(0.0, seconds / 2)
