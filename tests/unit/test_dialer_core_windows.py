"""Calling windows on the callee's clock: zones, daylight-saving changes, holidays and 24:00."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from callkit.errors import InvalidInput
from dialer.core.windows import describe, is_open, next_open, window_problems, zone
from dialer.spec import WEEKDAYS, CallingWindows, Span

LA, MOSCOW, LONDON = "America/Los_Angeles", "Europe/Moscow", "Europe/London"


def hours(spec: str) -> dict[str, list[Span]]:
    """``"mon-fri 09:00-18:00; sun 00:00-02:00 03:00-04:00"`` as CallingWindows hours."""
    result: dict[str, list[Span]] = {}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        days, *spans = part.split()
        first, _, last = days.partition("-")
        chosen = WEEKDAYS[WEEKDAYS.index(first) : WEEKDAYS.index(last or first) + 1]
        for day in chosen:
            result[day] = [Span(start=s[:5], end=s[6:]) for s in spans]
    return result


def windows(spec: str, holidays: list[date] | None = None) -> CallingWindows:
    return CallingWindows(hours=hours(spec), holidays=holidays or [])


def at(text: str) -> datetime:
    """An ISO instant with its offset (``...Z`` for UTC)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- zone ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [MOSCOW, LA, "UTC", "Asia/Kolkata"])
def test_known_zones_are_found(name: str) -> None:
    assert zone(name).key == name


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "", "Europe/", "../../etc/passwd", "Moscow"])
def test_an_unknown_zone_is_refused_naming_it(name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        zone(name)
    assert repr(name) in caught.value.message


# -- is_open ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "spec", "holidays", "now", "expected"),
    [
        # The same instant is mid-morning in Los Angeles and evening in Moscow.
        (LA, "mon-sun 09:00-20:00", [], "2026-06-15T17:30Z", True),  # 10:30 PDT
        (MOSCOW, "mon-sun 09:00-20:00", [], "2026-06-15T17:30Z", False),  # 20:30 MSK
        (LA, "mon-sun 09:00-20:00", [], "2026-06-15T06:30Z", False),  # 23:30 PDT
        (MOSCOW, "mon-sun 09:00-20:00", [], "2026-06-15T06:30Z", True),  # 09:30 MSK
        # The start is inside the span, the end is not.
        (MOSCOW, "mon 09:00-20:00", [], "2026-06-15T06:00Z", True),  # 09:00:00
        (MOSCOW, "mon 09:00-20:00", [], "2026-06-15T05:59:59Z", False),
        (MOSCOW, "mon 09:00-20:00", [], "2026-06-15T16:59:59.999Z", True),
        (MOSCOW, "mon 09:00-20:00", [], "2026-06-15T17:00Z", False),
        # The weekday is the callee's: Monday 01:00 in Moscow is still Sunday in UTC.
        ("UTC", "mon 00:00-24:00", [], "2026-06-14T22:00Z", False),
        (MOSCOW, "mon 00:00-24:00", [], "2026-06-14T22:00Z", True),
        # A missing day is closed.
        (MOSCOW, "mon-fri 09:00-20:00", [], "2026-06-13T10:00Z", False),  # Saturday
        # 24:00 reaches the end of the day, and a next-day 00:00 goes on from it.
        ("UTC", "sat 20:00-24:00", [], "2026-06-13T23:59:59Z", True),
        ("UTC", "sat 20:00-24:00", [], "2026-06-14T00:00Z", False),
        ("UTC", "sat 20:00-24:00; sun 00:00-02:00", [], "2026-06-14T00:00Z", True),
        # Holidays are local dates: 01:00 on 1 January in Moscow, still 31 December in UTC.
        (MOSCOW, "mon-sun 00:00-24:00", [date(2027, 1, 1)], "2026-12-31T22:00Z", False),
        ("UTC", "mon-sun 00:00-24:00", [date(2027, 1, 1)], "2026-12-31T22:00Z", True),
        (MOSCOW, "mon-sun 00:00-24:00", [date(2027, 1, 1)], "2026-12-31T20:59Z", True),
        # An instant given with any offset is the same instant.
        (MOSCOW, "mon 09:00-20:00", [], "2026-06-15T02:30-04:00", True),  # 06:30Z, 09:30 MSK
        # The spans of a day are independent; between them the window is closed.
        (LONDON, "mon 09:00-12:00 14:00-18:00", [], "2026-06-15T12:30Z", False),  # 13:30 BST
        (LONDON, "mon 09:00-12:00 14:00-18:00", [], "2026-06-15T13:30Z", True),  # 14:30 BST
    ],
)
def test_is_open_on_the_callees_clock(
    tz: str, spec: str, holidays: list[date], now: str, expected: bool
) -> None:
    assert is_open(windows(spec, holidays), zone(tz), at(now)) is expected


@pytest.mark.parametrize(
    ("tz", "now", "expected"),
    [
        # US spring forward (8 March 2026): 09:00-20:00 local is 17:00-04:00Z before, 16:00-03:00Z after.
        (LA, "2026-03-07T16:59Z", False),
        (LA, "2026-03-07T17:00Z", True),
        (LA, "2026-03-08T16:00Z", True),
        (LA, "2026-03-08T15:59Z", False),
        (LA, "2026-03-09T02:59Z", True),  # 19:59 PDT on Sunday
        (LA, "2026-03-09T03:00Z", False),  # 20:00 PDT
        # US fall back (1 November 2026): 16:00Z is 09:00 PDT on Saturday, 08:00 PST on Sunday.
        (LA, "2026-10-31T16:00Z", True),
        (LA, "2026-11-01T16:00Z", False),
        (LA, "2026-11-01T17:00Z", True),
        # Europe/London (29 March and 25 October 2026).
        (LONDON, "2026-03-28T09:00Z", True),  # 09:00 GMT
        (LONDON, "2026-03-29T08:00Z", True),  # 09:00 BST
        (LONDON, "2026-03-29T19:00Z", False),  # 20:00 BST
        (LONDON, "2026-10-25T08:30Z", False),  # 08:30 GMT
        (LONDON, "2026-10-25T19:59Z", True),  # 19:59 GMT
    ],
)
def test_local_hours_stay_local_across_daylight_saving_changes(
    tz: str, now: str, expected: bool
) -> None:
    assert is_open(windows("mon-sun 09:00-20:00"), zone(tz), at(now)) is expected


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open(windows("mon-sun 09:00-20:00"), zone(MOSCOW), datetime(2026, 6, 15, 10))


# -- next_open ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "spec", "holidays", "now", "expected"),
    [
        # Open now: now itself, in UTC.
        (MOSCOW, "mon 09:00-20:00", [], "2026-06-15T10:00+03:00", "2026-06-15T07:00Z"),
        # Later the same day, and between two spans of a day.
        (MOSCOW, "mon 09:00-20:00", [], "2026-06-15T03:00Z", "2026-06-15T06:00Z"),
        (LONDON, "mon 09:00-12:00 14:00-18:00", [], "2026-06-15T11:30Z", "2026-06-15T13:00Z"),
        # Over a weekend: Friday evening in London to Monday 09:00 BST.
        (LONDON, "mon-fri 09:00-18:00", [], "2026-06-12T17:30Z", "2026-06-15T08:00Z"),
        # The same instant opens at different instants in different zones.
        (LA, "mon-fri 09:00-18:00", [], "2026-06-13T12:00Z", "2026-06-15T16:00Z"),
        (MOSCOW, "mon-fri 09:00-18:00", [], "2026-06-13T12:00Z", "2026-06-15T06:00Z"),
        # A holiday on Monday: Tuesday.
        (
            MOSCOW,
            "mon-fri 09:00-18:00",
            [date(2026, 6, 15)],
            "2026-06-13T12:00Z",
            "2026-06-16T06:00Z",
        ),
        # US spring forward: Saturday 21:00 PST to Sunday 09:00 PDT.
        (LA, "mon-sun 09:00-20:00", [], "2026-03-08T05:00Z", "2026-03-08T16:00Z"),
        (LA, "mon-sun 09:00-20:00", [], "2026-03-07T05:00Z", "2026-03-07T17:00Z"),
        # US fall back: Saturday 21:00 PDT to Sunday 09:00 PST.
        (LA, "mon-sun 09:00-20:00", [], "2026-11-01T04:00Z", "2026-11-01T17:00Z"),
        # Europe/London spring and autumn.
        (LONDON, "mon-sun 09:00-20:00", [], "2026-03-28T20:30Z", "2026-03-29T08:00Z"),
        (LONDON, "mon-sun 09:00-20:00", [], "2026-10-24T19:30Z", "2026-10-25T09:00Z"),
        # A start inside the spring gap (02:00-03:00 does not exist): the clock jumps to 03:00.
        (LA, "sun 02:30-05:00", [], "2026-03-08T09:00Z", "2026-03-08T10:00Z"),
        # A span wholly inside the gap never happens that day: the next Sunday.
        (LA, "sun 02:10-02:50", [], "2026-03-08T09:00Z", "2026-03-15T09:10Z"),
        # The autumn repeat: 01:30 happens at 08:30Z (PDT) and again at 09:30Z (PST).
        (LA, "sun 01:30-01:45", [], "2026-11-01T08:50Z", "2026-11-01T09:30Z"),
        (LA, "sun 01:30-01:45", [], "2026-11-01T08:00Z", "2026-11-01T08:30Z"),
        # The clock falling back from 02:00 PDT to 01:00 PST lands inside 00:30-01:15 again.
        (LA, "sun 00:30-01:15", [], "2026-11-01T08:40Z", "2026-11-01T09:00Z"),
        # 24:00 and the next day's 00:00 make one stretch; closed until Saturday 20:00.
        ("UTC", "sat 20:00-24:00; sun 00:00-02:00", [], "2026-06-14T01:00Z", "2026-06-14T01:00Z"),
        ("UTC", "sat 20:00-24:00; sun 00:00-02:00", [], "2026-06-14T02:00Z", "2026-06-20T20:00Z"),
    ],
)
def test_next_open_is_the_first_open_instant(
    tz: str, spec: str, holidays: list[date], now: str, expected: str
) -> None:
    w, zi, start = windows(spec, holidays), zone(tz), at(now)
    opened = next_open(w, zi, start)
    assert opened == at(expected)
    assert opened.tzinfo is UTC
    assert is_open(w, zi, opened)
    # Nothing opens earlier: every minute from ``now`` up to the answer is closed.
    step, moment = timedelta(minutes=1), start
    while moment + step <= opened:
        assert not is_open(w, zi, moment), moment
        moment += step
    assert not is_open(w, zi, opened - timedelta(seconds=1)) or opened == start


@pytest.mark.parametrize(
    ("spec", "holidays"),
    [
        ("", []),
        # Only Mondays, and every Monday of the coming year is a holiday.
        ("mon 09:00-18:00", [date(2026, 6, 15) + timedelta(weeks=n) for n in range(53)]),
        # An invalid span opens nothing.
        ("mon-sun 18:00-09:00", []),
    ],
)
def test_a_window_that_never_opens_has_no_next_open(spec: str, holidays: list[date]) -> None:
    assert next_open(windows(spec, holidays), zone(MOSCOW), at("2026-06-14T12:00Z")) is None


def test_next_open_looks_a_year_ahead() -> None:
    """Holidays close every Monday but the last within 366 days: that one is found."""
    holidays = [date(2026, 6, 15) + timedelta(weeks=n) for n in range(52)]
    opened = next_open(windows("mon 09:00-18:00", holidays), zone("UTC"), at("2026-06-14T12:00Z"))
    assert opened == at("2027-06-14T09:00Z")


# -- window_problems and describe ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("mon-fri 10:00-19:00; sat 10:00-16:00", []),
        ("mon 09:00-12:00 12:00-24:00", []),  # touching spans do not overlap
        ("mon 09:00-12:00 11:00-13:00", ["mon: 09:00-12:00 and 11:00-13:00 overlap"]),
        (
            "tue 09:00-18:00 10:00-11:00 12:00-13:00",
            [
                "tue: 09:00-18:00 and 10:00-11:00 overlap",
                "tue: 09:00-18:00 and 12:00-13:00 overlap",
            ],
        ),
        (
            "mon 09:00-18:00; wed 20:00-09:00",
            ["wed 20:00-09:00: the start must be before the end"],
        ),
        (
            "fri 10:00-10:00",
            [
                "fri 10:00-10:00: the start must be before the end",
                "no calling hours on any day: the campaign would never call",
            ],
        ),
        ("", ["no calling hours on any day: the campaign would never call"]),
    ],
)
def test_window_problems_name_the_day_and_span(spec: str, expected: list[str]) -> None:
    assert window_problems(windows(spec)) == expected


def test_describe_groups_days_with_the_same_hours() -> None:
    text = describe(windows("mon-fri 09:00-18:00; sat 10:00-14:00 15:00-16:00"))
    assert text == "mon-fri 09:00-18:00; sat 10:00-14:00, 15:00-16:00; sun closed"
