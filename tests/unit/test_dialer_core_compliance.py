"""Compliance profiles: their legal hours, the windows a campaign really calls in, and refusals."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from dialer.core.compliance import campaign_problems, effective_windows, profile_windows
from dialer.core.states import Profile
from dialer.core.windows import describe, is_open, zone
from dialer.spec import WEEKDAYS, CallingWindows, CampaignSpec, Span


def hours(spec: str) -> dict[str, list[Span]]:
    """``"mon-fri 09:00-18:00; sun 10:00-12:00"`` as CallingWindows hours."""
    result: dict[str, list[Span]] = {}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        days, *spans = part.split()
        first, _, last = days.partition("-")
        for day in WEEKDAYS[WEEKDAYS.index(first) : WEEKDAYS.index(last or first) + 1]:
            result[day] = [Span(start=s[:5], end=s[6:]) for s in spans]
    return result


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        (Profile.US, "mon-sun 08:00-21:00"),
        (Profile.UK, "mon-sat 08:00-21:00; sun 10:00-20:00"),
        (Profile.RU, "mon-fri 08:00-22:00; sat-sun 09:00-20:00"),
    ],
)
def test_each_profile_has_its_legal_hours(profile: Profile, expected: str) -> None:
    legal = profile_windows(profile)
    assert legal is not None
    assert describe(legal) == expected


def test_no_profile_has_no_limit() -> None:
    assert profile_windows(Profile.NONE) is None


@pytest.mark.parametrize(
    ("campaign", "profile", "expected"),
    [
        # Trimmed to the us 08:00-21:00.
        ("mon 07:00-23:00", Profile.US, "mon 08:00-21:00; tue-sun closed"),
        # Already inside: unchanged.
        (
            "mon-fri 10:00-19:00; sat 10:00-16:00",
            Profile.RU,
            "mon-fri 10:00-19:00; sat 10:00-16:00; sun closed",
        ),
        # ru weekends start later and end earlier than weekdays.
        ("mon-sun 07:00-23:00", Profile.RU, "mon-fri 08:00-22:00; sat-sun 09:00-20:00"),
        ("sun 07:00-09:30 19:00-23:00", Profile.RU, "mon-sat closed; sun 09:00-09:30, 19:00-20:00"),
        # uk Sunday is shorter.
        ("sat-sun 09:00-21:00", Profile.UK, "mon-fri closed; sat 09:00-21:00; sun 10:00-20:00"),
        # Wholly outside the legal hours: nothing is left of that day.
        (
            "mon 06:00-07:30; tue 09:00-10:00",
            Profile.US,
            "mon closed; tue 09:00-10:00; wed-sun closed",
        ),
        # Overlapping spans of the campaign come out as one.
        ("mon 09:00-12:00 11:00-14:00", Profile.NONE, "mon 09:00-14:00; tue-sun closed"),
        # No profile: the campaign's own hours, 24:00 included.
        ("fri 20:00-24:00", Profile.NONE, "mon-thu closed; fri 20:00-24:00; sat-sun closed"),
    ],
)
def test_effective_windows_are_the_campaigns_within_the_legal_hours(
    campaign: str, profile: Profile, expected: str
) -> None:
    assert describe(effective_windows(CallingWindows(hours=hours(campaign)), profile)) == expected


def test_the_us_profile_stops_calls_at_nine_in_the_evening_local() -> None:
    """A campaign that asks for 07:00-23:00 calls New York only from 08:00 to 21:00 there."""
    effective = effective_windows(CallingWindows(hours=hours("mon-sun 07:00-23:00")), Profile.US)
    ny = zone("America/New_York")
    assert not is_open(effective, ny, datetime(2026, 6, 15, 11, 59, tzinfo=UTC))  # 07:59 EDT
    assert is_open(effective, ny, datetime(2026, 6, 15, 12, 0, tzinfo=UTC))  # 08:00 EDT
    assert is_open(effective, ny, datetime(2026, 6, 16, 0, 59, tzinfo=UTC))  # 20:59 EDT
    assert not is_open(effective, ny, datetime(2026, 6, 16, 1, 0, tzinfo=UTC))  # 21:00 EDT


def test_the_campaigns_holidays_stay_closed() -> None:
    own = CallingWindows(hours=hours("mon-sun 10:00-18:00"), holidays=[date(2026, 12, 25)])
    assert effective_windows(own, Profile.US).holidays == [date(2026, 12, 25)]


def test_the_ru_profile_closes_public_holidays_of_the_years_given() -> None:
    own = CallingWindows(hours=hours("mon-sun 10:00-18:00"), holidays=[date(2027, 5, 3)])
    effective = effective_windows(own, Profile.RU, years=[2027])
    moscow = zone("Europe/Moscow")
    # Thursday 7 January 2027 (Christmas) and Tuesday 23 February, at noon in Moscow: closed.
    assert not is_open(effective, moscow, datetime(2027, 1, 7, 9, tzinfo=UTC))
    assert not is_open(effective, moscow, datetime(2027, 2, 23, 9, tzinfo=UTC))
    assert not is_open(effective, moscow, datetime(2027, 5, 3, 9, tzinfo=UTC))  # the campaign's
    assert is_open(effective, moscow, datetime(2027, 2, 24, 9, tzinfo=UTC))
    # Other profiles have no public holidays of their own.
    assert effective_windows(own, Profile.US, years=[2027]).holidays == [date(2027, 5, 3)]


def spec(**overrides: Any) -> CampaignSpec:
    return CampaignSpec.model_validate({"name": "recall", **overrides})


@pytest.mark.parametrize(
    ("overrides", "contacts", "without_consent", "expected"),
    [
        ({}, 10, 0, []),
        ({"profile": "ru", "purpose": "service"}, 10, 10, []),
        ({"profile": "ru", "purpose": "informational"}, 10, 0, []),
        # ru: marketing by automatic dialing is refused whatever the consent.
        ({"profile": "ru", "purpose": "marketing"}, 10, 0, ["38-FZ art. 18"]),
        # us and uk: marketing needs a consent reference on every contact.
        ({"profile": "us", "purpose": "marketing"}, 10, 3, [("3 of 10 contacts have no consent", "us profile", "TCPA")]),
        ({"profile": "us", "purpose": "marketing"}, 10, 0, []),
        ({"profile": "us", "purpose": "service"}, 10, 10, []),
        ({"profile": "uk", "purpose": "marketing"}, 4, 4, [("4 of 4 contacts have no consent", "PECR")]),
        ({"profile": "none", "purpose": "marketing"}, 10, 10, []),
        # An unknown campaign zone is named.
        ({"timezone": "Europe/Atlantis"}, 10, 0, [("campaign timezone", "'Europe/Atlantis'")]),
        # Window problems of the campaign's own hours, naming the day and span.
        ({"windows": {"hours": {"mon": [{"start": "18:00", "end": "09:00"}]}}}, 10, 0,
         ["calling windows: mon 18:00-09:00", "calling windows: no calling hours"]),
        ({"windows": {"hours": {"tue": [{"start": "09:00", "end": "12:00"}, {"start": "11:00", "end": "13:00"}]}}}, 10, 0,
         ["calling windows: tue: 09:00-12:00 and 11:00-13:00 overlap"]),
        # Hours valid on their own, but none of them legal under the profile.
        ({"profile": "us", "windows": {"hours": {"mon": [{"start": "21:30", "end": "23:00"}]}}}, 10, 0,
         ["none of the campaign's hours lies within the us profile's legal hours (mon-sun 08:00-21:00)"]),
        ({"profile": "none", "windows": {"hours": {"mon": [{"start": "21:30", "end": "23:00"}]}}}, 10, 0, []),
        # Nothing to call.
        ({}, 0, 0, ["no contacts"]),
        # Every reason at once, each in its own message.
        ({"profile": "ru", "purpose": "marketing", "timezone": "Nowhere", "windows": {"hours": {}}}, 0, 0,
         ["38-FZ", "'Nowhere'", "no calling hours", "no contacts"]),
    ],
)  # fmt: skip
def test_campaign_problems_refuse_to_start_naming_the_reason(
    overrides: dict[str, Any],
    contacts: int,
    without_consent: int,
    expected: list[str | tuple[str, ...]],
) -> None:
    """One message per reason, in order; a tuple lists fragments of the same message."""
    problems = campaign_problems(
        spec(**overrides), contacts=contacts, contacts_without_consent=without_consent
    )
    assert len(problems) == len(expected), problems
    for fragments, problem in zip(expected, problems, strict=True):
        for fragment in (fragments,) if isinstance(fragments, str) else fragments:
            assert fragment in problem, problems
