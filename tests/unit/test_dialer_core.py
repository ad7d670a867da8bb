"""The dialer's decisions: hangup causes, retries, frequency caps, pacing and the breakers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args
from zoneinfo import ZoneInfo

import pytest

from callkit.contracts.outcome import Status
from callkit.errors import InvalidInput
from dialer.core.breaker import AbandonTracker, TrunkBreaker, is_abandoned
from dialer.core.caps import cap_allows
from dialer.core.causes import is_trunk_failure, outcome_for_cause
from dialer.core.pacing import TokenBucket, dial_budget
from dialer.core.retry import is_final, next_attempt, next_eligible
from dialer.spec import CallingWindows, FrequencyCaps, RetryPolicy, Span

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)  # a Monday
MIN, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)

# -- causes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cause", "outcome", "trunk"),
    [
        ("USER_BUSY", "busy", False),
        ("NO_ANSWER", "no_answer", False),
        ("NO_USER_RESPONSE", "no_answer", False),
        ("ORIGINATOR_CANCEL", "no_answer", False),
        ("ALLOTTED_TIMEOUT", "no_answer", False),
        ("SUBSCRIBER_ABSENT", "no_answer", False),
        ("NORMAL_TEMPORARY_FAILURE", "failed", True),
        ("SWITCH_CONGESTION", "failed", True),
        ("NORMAL_CIRCUIT_CONGESTION", "failed", True),
        ("DESTINATION_OUT_OF_ORDER", "failed", True),
        ("NETWORK_OUT_OF_ORDER", "failed", True),
        ("RECOVERY_ON_TIMER_EXPIRE", "failed", True),
        ("GATEWAY_DOWN", "failed", True),
        ("NO_ROUTE_TRANSIT_NET", "failed", True),
        ("REQUESTED_CHAN_UNAVAIL", "failed", True),
        ("SERVICE_UNAVAILABLE", "failed", True),
        ("PROGRESS_TIMEOUT", "failed", True),
        ("MEDIA_TIMEOUT", "failed", True),
        ("UNALLOCATED_NUMBER", "invalid_number", False),
        ("NUMBER_CHANGED", "invalid_number", False),
        ("INVALID_NUMBER_FORMAT", "invalid_number", False),
        ("NO_ROUTE_DESTINATION", "invalid_number", False),
        ("INCOMPATIBLE_DESTINATION", "invalid_number", False),
        ("CALL_REJECTED", "rejected", False),
        # Header values arrive as sent; case and stray spaces do not matter.
        (" user_busy\r\n", "busy", False),
        ("normal_temporary_failure", "failed", True),
        # Unknown: failed (retried once), but the trunk is not blamed for it.
        ("SOMETHING_NEW", "failed", False),
        ("MANAGER_REQUEST", "failed", False),
        ("", "failed", False),
    ],
)
def test_each_cause_group(cause: str, outcome: str, trunk: bool) -> None:
    assert outcome_for_cause(cause) == outcome
    assert is_trunk_failure(cause) is trunk


# -- retry --------------------------------------------------------------------------------------

POLICY = RetryPolicy()  # 3 attempts; busy 10 min, no answer 180, failed 15, callback 120


@pytest.mark.parametrize(
    ("policy", "outcome", "attempts", "failed_retries", "expected"),
    [
        (POLICY, "busy", 1, 0, NOW + 10 * MIN),
        (POLICY, "busy", 2, 0, NOW + 10 * MIN),
        (POLICY, "no_answer", 1, 0, NOW + 3 * HOUR),
        (RetryPolicy(no_answer_after_min=1440), "no_answer", 1, 0, NOW + DAY),
        (POLICY, "callback", 1, 0, NOW + 2 * HOUR),
        # failed: retried once, then the contact is finished.
        (POLICY, "failed", 1, 0, NOW + 15 * MIN),
        (POLICY, "failed", 2, 1, None),
        (RetryPolicy(max_attempts=10), "failed", 5, 1, None),
        # voicemail: by the policy.
        (POLICY, "voicemail", 1, 0, None),
        (RetryPolicy(voicemail_after_min=60), "voicemail", 1, 0, NOW + HOUR),
        # The budget: attempts of every outcome count, one budget per contact.
        (POLICY, "busy", 3, 0, None),
        (POLICY, "no_answer", 3, 0, None),
        # ...but for the callee's own request to be called back, kept on the last attempt too.
        (POLICY, "callback", 3, 0, NOW + 2 * HOUR),
        (RetryPolicy(max_attempts=1), "callback", 1, 0, NOW + 2 * HOUR),
        (POLICY, "failed", 3, 0, None),
        (RetryPolicy(max_attempts=1), "busy", 1, 0, None),
        (RetryPolicy(max_attempts=5), "no_answer", 4, 1, NOW + 3 * HOUR),
        # Final outcomes end the contact on the first attempt.
        *[
            (POLICY, outcome, 1, 0, None)
            for outcome in (
                "invalid_number",
                "rejected",
                "opt_out",
                "booked",
                "not_interested",
                "transferred",
                "wrong_number",
                "skipped_dnc",
                "incomplete",
            )
        ],
    ],
)
def test_retry_schedule_per_outcome(
    policy: RetryPolicy, outcome: str, attempts: int, failed_retries: int, expected: datetime | None
) -> None:
    assert (
        next_attempt(policy, outcome, attempts=attempts, failed_retries=failed_retries, now=NOW)
        == expected
    )


def test_a_contact_goes_through_its_budget() -> None:
    """busy, then a network failure, then no answer: three attempts and the contact is done."""
    now, failed_retries = NOW, 0
    schedule: list[datetime | None] = []
    for attempts, outcome in enumerate(("busy", "failed", "no_answer"), 1):
        schedule.append(
            next_attempt(POLICY, outcome, attempts=attempts, failed_retries=failed_retries, now=now)
        )
        if outcome == "failed":
            failed_retries += 1
        now = schedule[-1] or now
    assert schedule == [NOW + 10 * MIN, NOW + 25 * MIN, None]


def schedule_of(policy: RetryPolicy, outcomes: list[str]) -> list[datetime | None]:
    """The next attempt after each of a contact's attempts, as the dialer counts them."""
    now, asked, schedule = NOW, 0, []
    for attempts, outcome in enumerate(outcomes, 1):
        due = next_attempt(
            policy, outcome, attempts=attempts, failed_retries=0, now=now, callbacks_before=asked
        )
        schedule.append(due)
        asked += outcome == "callback"
        now = due or now
    return schedule


def test_a_callback_asked_for_on_the_last_attempt_is_made() -> None:
    """No answer twice, then the callee picks up and says "call me later": called back."""
    assert schedule_of(POLICY, ["no_answer", "no_answer", "callback", "booked"]) == [
        NOW + 3 * HOUR,
        NOW + 6 * HOUR,
        NOW + 8 * HOUR,
        None,
    ]


def test_a_callback_does_not_eat_the_attempts_left_for_no_answer() -> None:
    """A callback asked for on the first call, then nobody answers: still three tries at
    reaching them, as for a contact who never asked."""
    schedule = schedule_of(POLICY, ["callback", "no_answer", "no_answer", "no_answer"])
    assert schedule[:3] == [NOW + 2 * HOUR, NOW + 5 * HOUR, NOW + 8 * HOUR]
    assert schedule[3] is None


def test_a_callee_who_keeps_putting_the_call_off_is_called_a_bounded_number_of_times() -> None:
    """max_callbacks requests ride on top of the budget; past them a request counts as an
    attempt, so the contact ends after max_attempts + max_callbacks calls."""
    policy = RetryPolicy(max_attempts=3, max_callbacks=2)
    assert schedule_of(policy, ["callback"] * 5) == [
        NOW + 2 * HOUR,
        NOW + 4 * HOUR,
        NOW + 6 * HOUR,
        NOW + 8 * HOUR,
        None,  # the fifth call is the last
    ]
    # Without callbacks on top, a request on the last attempt ends the contact, as before.
    assert schedule_of(RetryPolicy(max_attempts=2, max_callbacks=0), ["callback"] * 2) == [
        NOW + 2 * HOUR,
        None,
    ]


def test_delays_are_real_time_across_a_clock_change() -> None:
    """Three hours after 00:30 PDT on the night the clocks fall back is 02:30 PST, not 03:30."""
    la = ZoneInfo("America/Los_Angeles")
    now = datetime(2026, 11, 1, 0, 30, tzinfo=la)
    due = next_attempt(POLICY, "no_answer", attempts=1, failed_retries=0, now=now)
    assert due == datetime(2026, 11, 1, 10, 30, tzinfo=UTC)
    assert due is not None
    assert due.tzinfo is UTC
    assert due.astimezone(la).hour == 2


@pytest.mark.parametrize(
    ("outcome", "final"),
    [(status, status not in {"busy", "no_answer", "failed", "callback", "voicemail"})
     for status in get_args(Status)],
)  # fmt: skip
def test_is_final(outcome: str, final: bool) -> None:
    assert is_final(outcome) is final


def test_an_unknown_outcome_is_refused_naming_it() -> None:
    with pytest.raises(InvalidInput, match="'maybe'"):
        next_attempt(POLICY, "maybe", attempts=1, failed_retries=0, now=NOW)


# -- caps ---------------------------------------------------------------------------------------

CAPS = FrequencyCaps(per_day=2, per_week=5, per_month=10)


@pytest.mark.parametrize(
    ("past", "expected"),
    [
        ([], None),
        ([NOW - HOUR], None),
        # Two in the last 24 h: free again when the older one is 24 h old.
        ([NOW - 23 * HOUR, NOW - HOUR], NOW + HOUR),
        ([NOW - HOUR, NOW - 23 * HOUR], NOW + HOUR),  # any order
        # An attempt exactly 24 h ago no longer counts against the day.
        ([NOW - DAY, NOW - HOUR], None),
        # Rolling, not calendar: 23:50 and 00:10 are the same day's two attempts.
        ([NOW - 12 * HOUR - 10 * MIN, NOW - 11 * HOUR - 50 * MIN], NOW + 11 * HOUR + 50 * MIN),
        # Five in the week, one a day: free when the oldest is 7 days old.
        ([NOW - n * DAY for n in range(1, 6)], NOW + 2 * DAY),
        # Ten in the month, one every three days: free when the oldest is 30 days old.
        ([NOW - (1 + 3 * n) * DAY for n in range(10)], NOW + 2 * DAY),
        # Day and week both full: the later release wins.
        (
            [NOW - 6 * DAY, NOW - 5 * DAY, NOW - 4 * DAY, NOW - 2 * HOUR, NOW - HOUR],
            NOW + DAY,  # the week frees at +1 day, the day at +22 h
        ),
        # Attempts given in another zone are the same instants.
        ([(NOW - 23 * HOUR).astimezone(ZoneInfo("Asia/Tokyo")), NOW - HOUR], NOW + HOUR),
    ],
)
def test_caps_rolling_windows(past: list[datetime], expected: datetime | None) -> None:
    assert cap_allows(CAPS, past, NOW) == expected


def test_three_a_day_needs_the_two_oldest_to_age_out_when_the_cap_is_two() -> None:
    past = [NOW - 20 * HOUR, NOW - 10 * HOUR, NOW - HOUR]
    assert cap_allows(CAPS, past, NOW) == NOW + 14 * HOUR  # when 10 h ago turns 24 h old


MOSCOW = ZoneInfo("Europe/Moscow")
WEEKDAYS_9_18 = CallingWindows(
    hours={day: [Span(start="09:00", end="18:00")] for day in ("mon", "tue", "wed", "thu", "fri")}
)


@pytest.mark.parametrize(
    ("not_before", "past", "expected"),
    [
        # Open and within the caps: at once.
        (NOW, [], NOW),  # 15:00 MSK on a Monday
        # The day's cap frees at 10:00 MSK on Tuesday, inside the window.
        (NOW, [NOW - 5 * HOUR, NOW - 2 * HOUR], datetime(2026, 6, 16, 7, tzinfo=UTC)),
        # The cap frees on Saturday: the window is next open on Monday 09:00 MSK.
        (
            datetime(2026, 6, 19, 9, tzinfo=UTC),  # Friday 12:00 MSK
            [datetime(2026, 6, 19, 7, tzinfo=UTC), datetime(2026, 6, 19, 8, tzinfo=UTC)],
            datetime(2026, 6, 22, 6, tzinfo=UTC),
        ),
        # The cap frees at 05:00 MSK, before the window opens at 09:00.
        (
            NOW,
            [datetime(2026, 6, 15, 2, tzinfo=UTC), datetime(2026, 6, 15, 3, tzinfo=UTC)],
            datetime(2026, 6, 16, 6, tzinfo=UTC),
        ),
    ],
)
def test_next_eligible_meets_both_the_window_and_the_caps(
    not_before: datetime, past: list[datetime], expected: datetime
) -> None:
    assert (
        next_eligible(not_before, windows=WEEKDAYS_9_18, tz=MOSCOW, caps=CAPS, past=past)
        == expected
    )


def test_a_window_that_never_opens_is_never_eligible() -> None:
    closed = CallingWindows(hours={})
    assert next_eligible(NOW, windows=closed, tz=MOSCOW, caps=CAPS, past=[]) is None


# -- pacing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "burst", "takes"),
    [
        # 2 a second, no saving: one token every 0.5 s.
        (2.0, 1.0, [(0.0, True), (0.0, False), (0.49, False), (0.5, True), (0.9, False), (1.0, True)]),
        # A burst of 3 goes at once, then the rate holds.
        (1.0, 3.0, [(0.0, True), (0.0, True), (0.0, True), (0.0, False), (1.0, True), (1.5, False)]),
        # A long idle saves no more than the burst.
        (1.0, 2.0, [(0.0, True), (0.0, True), (100.0, True), (100.0, True), (100.0, False)]),
        # A rate whose period is not exact in binary still gives a token on time.
        (1 / 3, 1.0, [(0.0, True), (2.9, False), (3.0, True), (6.0, True), (8.9, False), (9.0, True)]),
        # A clock read out of order adds nothing.
        (1.0, 1.0, [(10.0, True), (9.0, False), (10.5, False), (11.0, True)]),
    ],
)  # fmt: skip
def test_token_bucket_with_a_fake_clock(
    rate: float, burst: float, takes: list[tuple[float, bool]]
) -> None:
    bucket = TokenBucket(rate, burst)
    assert [bucket.take(t) for t, _ in takes] == [ok for _, ok in takes]


@pytest.mark.parametrize(
    ("taken", "now", "expected"),
    [
        ([], 0.0, 0.0),  # full: no wait
        ([0.0], 0.0, 0.5),  # just taken: the next in half a second
        ([0.0], 0.2, 0.3),
        ([0.0], 0.6, 0.0),
    ],
)
def test_token_bucket_says_how_long_to_wait(
    taken: list[float], now: float, expected: float
) -> None:
    bucket = TokenBucket(rate=2.0)
    for t in taken:
        assert bucket.take(t)
    assert bucket.wait_s(now) == pytest.approx(expected)
    if expected:
        assert not bucket.take(now)
    assert bucket.take(now + expected)


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1.0), (-1.0, 1.0), (1.0, 0.5)])
def test_token_bucket_refuses_a_rate_or_burst_that_never_lets_a_call(
    rate: float, burst: float
) -> None:
    with pytest.raises(ValueError, match=r"rate|burst"):
        TokenBucket(rate, burst)


@pytest.mark.parametrize(
    ("concurrency", "active", "due", "expected"),
    [
        (2, 0, 10, 2),
        (2, 1, 10, 1),
        (2, 2, 10, 0),
        (5, 1, 2, 2),  # fewer due than free slots
        (3, 0, 0, 0),
        (2, 3, 5, 0),  # over the limit after it was lowered: nothing, never negative
    ],
)
def test_dial_budget_never_exceeds_free_slots(
    concurrency: int, active: int, due: int, expected: int
) -> None:
    assert dial_budget(concurrency=concurrency, active=active, due=due) == expected


# -- trunk breaker ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("calls", "at", "tripped", "reason"),
    [
        # Half of six calls failed within 120 s: tripped.
        ([(0, True), (10, True), (20, True), (30, False), (40, False), (50, False)], 60, True,
         "3 of 6 calls failed on the trunk in the last 120 s"),
        ([(0, True), (10, True), (20, True), (30, True), (40, False), (50, False)], 60, True,
         "4 of 6 calls failed on the trunk in the last 120 s"),
        # Below half: not tripped.
        ([(0, True), (10, True), (20, False), (30, False), (40, False), (50, False)], 60, False, None),
        ([(0, True), (10, True), (20, True), (30, False), (40, False), (50, False), (55, False)], 60,
         False, None),
        # Every call failed, but too few calls to judge a trunk by.
        ([(0, True), (10, True), (20, True), (30, True), (40, True)], 60, False, None),
        # The window slides: at 120 s the failure at 0 s is out, 2 of 5 is left.
        ([(0, True), (10, True), (20, True), (30, False), (40, False), (50, False)], 120, False, None),
        ([(0, True), (10, True), (20, True), (30, False), (40, False), (50, False)], 119.9, True,
         "3 of 6 calls failed on the trunk in the last 120 s"),
        # Calls spread wider than the window never add up to a trip.
        ([(n * 50.0, n % 2 == 0) for n in range(12)], 600, False, None),
    ],
)  # fmt: skip
def test_trunk_breaker_trips_at_half_over_the_window(
    calls: list[tuple[float, bool]], at: float, tripped: bool, reason: str | None
) -> None:
    breaker = TrunkBreaker()
    for t, failed in calls:
        breaker.record(t, failed)
    assert breaker.tripped(at) is tripped
    assert breaker.reason(at) == reason


def test_trunk_breaker_recovers_as_its_window_slides() -> None:
    breaker = TrunkBreaker(window_s=120, ratio=0.5, min_calls=6)
    for t in range(6):  # an outage: six failures in six seconds
        breaker.record(float(t), failed=True)
    assert breaker.tripped(6.0)
    assert breaker.tripped(119.5)  # all six still inside the last 120 s
    assert not breaker.tripped(120.0)  # the first slid out: five calls are too few to judge
    assert breaker.reason(120.0) is None
    assert not breaker.tripped(126.0)  # all slid out
    # Healthy calls after the outage keep it closed.
    for t in range(130, 140):
        breaker.record(float(t), failed=False)
    breaker.record(140.0, failed=True)
    assert not breaker.tripped(141.0)


# -- abandoned calls ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first_audio_after_s", "agent_dropped", "abandoned"),
    [
        (0.4, False, False),
        (2.0, False, False),  # exactly 2 s is within the rule
        (2.01, False, True),
        (None, False, True),  # the agent never spoke: a silent call
        (0.4, True, True),  # the agent side dropped it
    ],
)
def test_what_counts_as_abandoned(
    first_audio_after_s: float | None, agent_dropped: bool, abandoned: bool
) -> None:
    assert (
        is_abandoned(first_audio_after_s=first_audio_after_s, agent_dropped=agent_dropped)
        is abandoned
    )


@pytest.mark.parametrize(
    ("answered", "abandoned", "unanswered", "over", "reason"),
    [
        (100, 3, 0, False, None),  # exactly 3%: not above
        (100, 4, 0, True, "4 of 100 answered calls were abandoned (4.0%), above the 3% limit"),
        (20, 1, 0, True, "1 of 20 answered calls were abandoned (5.0%), above the 3% limit"),
        (19, 5, 0, False, None),  # too few answered calls to judge the rate
        # Unanswered calls are not in the rate.
        (100, 3, 400, False, None),
        (34, 1, 0, False, None),  # 2.9%
        (33, 1, 0, True, "1 of 33 answered calls were abandoned (3.0%), above the 3% limit"),
    ],
)
def test_abandon_threshold(
    answered: int, abandoned: int, unanswered: int, over: bool, reason: str | None
) -> None:
    tracker = AbandonTracker()
    for n in range(answered):
        tracker.record(abandoned=n < abandoned)
    for _ in range(unanswered):
        tracker.record(answered=False, abandoned=False)
    assert tracker.rate == pytest.approx(abandoned / answered)
    assert tracker.over is over
    assert tracker.reason == reason


def test_abandon_tracker_goes_on_from_kept_counts() -> None:
    tracker = AbandonTracker(answered=100, abandoned=3)
    assert not tracker.over
    tracker.record(abandoned=True)
    assert tracker.over
    assert tracker.reason == "4 of 101 answered calls were abandoned (4.0%), above the 3% limit"


def test_an_unanswered_call_cannot_be_abandoned() -> None:
    with pytest.raises(ValueError, match="never answered"):
        AbandonTracker().record(answered=False, abandoned=True)
