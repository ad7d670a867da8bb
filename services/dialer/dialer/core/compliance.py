"""The calling rules of a compliance profile, and whether a campaign may start under them.

A profile narrows a campaign's own windows to the legal calling hours of its jurisdiction
(``effective_windows``) and refuses to start a campaign that breaks its rules
(``campaign_problems``). The rules are deliberately conservative: where the law leaves room for
interpretation, the profile takes the stricter reading.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Final

from callkit.errors import InvalidInput
from dialer.core.states import Profile, Purpose
from dialer.core.windows import describe, window_problems, zone
from dialer.spec import WEEKDAYS, CallingWindows, CampaignSpec, Span


def _every(days: Iterable[str], start: str, end: str) -> dict[str, list[Span]]:
    return {day: [Span(start=start, end=end)] for day in days}


_WEEK, _WEEKEND = WEEKDAYS[:5], WEEKDAYS[5:]

_PROFILE_HOURS: Final[dict[Profile, dict[str, list[Span]]]] = {
    # TCPA, 47 CFR 64.1200(c)(1): no telephone solicitation before 8 a.m. or after 9 p.m. at
    # the called party's location. Some states are stricter (Sundays, holidays, an earlier end);
    # those are the campaign's own windows to express.
    Profile.US: _every(WEEKDAYS, "08:00", "21:00"),
    # No UK statute or Ofcom rule fixes calling hours: Ofcom's persistent-misuse policy
    # (Communications Act 2003 s.128-131) targets abandoned and silent calls. These are a
    # conservative reading of "reasonable hours": 08:00-21:00 Monday to Saturday, a shorter
    # Sunday.
    Profile.UK: _every(WEEKDAYS[:6], "08:00", "21:00") | _every(["sun"], "10:00", "20:00"),
    # 230-FZ art. 7 part 3 (interaction with debtors, the strictest hours in Russian law and the
    # common reference for automated calls): 08:00-22:00 on working days, 09:00-20:00 on
    # weekends and non-working holidays.
    Profile.RU: _every(_WEEK, "08:00", "22:00") | _every(_WEEKEND, "09:00", "20:00"),
}

#: Non-working public holidays in Russia (Labour Code art. 112) as (month, day). CallingWindows
#: holds closed dates, not hours per date, so under the ru profile they are closed altogether,
#: stricter than the 09:00-20:00 the law allows on them. Days off moved by the yearly government
#: decree are not computable; a campaign adds them to its own holidays.
RU_HOLIDAYS: Final = (
    (1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (1, 6), (1, 7), (1, 8),
    (2, 23), (3, 8), (5, 1), (5, 9), (6, 12), (11, 4),
)  # fmt: skip


def profile_windows(profile: Profile) -> CallingWindows | None:
    """The legal calling hours of ``profile`` in the callee's local time; None: no limit."""
    hours = _PROFILE_HOURS.get(profile)
    if hours is None:
        return None
    return CallingWindows(hours={day: list(spans) for day, spans in hours.items()})


def effective_windows(
    windows: CallingWindows, profile: Profile, *, years: Iterable[int] = ()
) -> CallingWindows:
    """The campaign's windows narrowed to the profile's legal hours (their intersection).

    ``years``: the years the campaign may call in, whose public holidays the profile closes
    (only ru has any). Spans of a day are merged before the intersection, so overlapping spans
    of the campaign come out as one; a span whose start is not before its end opens nothing.
    """
    legal = profile_windows(profile)
    holidays = set(windows.holidays)
    if profile == Profile.RU:
        holidays |= {date(year, month, day) for year in years for month, day in RU_HOLIDAYS}
    hours: dict[str, list[Span]] = {}
    for day in WEEKDAYS:
        ours = _merged(windows.hours.get(day, []))
        if legal is not None:
            ours = _intersection(ours, _merged(legal.hours.get(day, [])))
        if ours:
            hours[day] = [Span(start=_hhmm(start), end=_hhmm(end)) for start, end in ours]
    return CallingWindows(hours=hours, holidays=sorted(holidays))


def campaign_problems(
    spec: CampaignSpec, *, contacts: int, contacts_without_consent: int
) -> list[str]:
    """Why ``spec`` may not start, one message per reason; empty when it may.

    ``contacts``: how many contacts it has; ``contacts_without_consent``: how many of them carry
    no consent reference.
    """
    problems: list[str] = []
    marketing = spec.purpose == Purpose.MARKETING
    if marketing and spec.profile == Profile.RU:
        problems.append(
            "the ru profile refuses marketing campaigns: 38-FZ art. 18 part 2 forbids advertising "
            "by automatic dialing, whatever the consent"
        )
    if marketing and spec.profile in _CONSENT_RULES and contacts_without_consent > 0:
        problems.append(
            f"{contacts_without_consent} of {contacts} contacts have no consent reference; a "
            f"marketing campaign under the {spec.profile} profile needs one on every contact "
            f"({_CONSENT_RULES[spec.profile]})"
        )
    try:
        zone(spec.timezone)
    except InvalidInput as exc:
        problems.append(f"campaign timezone: {exc.message}")
    own = window_problems(spec.windows)
    problems.extend(f"calling windows: {problem}" for problem in own)
    legal = profile_windows(spec.profile)
    if not own and legal is not None:
        left = effective_windows(spec.windows, spec.profile)
        if not any(left.hours.values()):
            problems.append(
                f"calling windows: none of the campaign's hours lies within the {spec.profile} "
                f"profile's legal hours ({describe(legal)})"
            )
    if contacts <= 0:
        problems.append("the campaign has no contacts to call")
    return problems


#: The profiles under which every contact of a marketing campaign needs a consent reference.
_CONSENT_RULES: Final[dict[Profile, str]] = {
    Profile.US: "TCPA prior express written consent; FCC 24-17 treats an AI voice as artificial",
    Profile.UK: "PECR reg. 19: automated marketing calls need the subscriber's prior consent",
}


def _merged(spans: Iterable[Span]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(s.minutes() for s in spans):
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _intersection(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return [(max(s1, s2), min(e1, e2)) for s1, e1 in a for s2, e2 in b if max(s1, s2) < min(e1, e2)]


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
