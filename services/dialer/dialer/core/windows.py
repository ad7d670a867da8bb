"""Calling windows: is a contact's local time inside its calling hours, and when will it be?

A window is weekly wall-clock hours plus closed dates, both in the callee's local time, so a span
09:00-20:00 stays 09:00-20:00 on the clock of the callee on both sides of a daylight-saving
change. Everything is judged on the local wall clock: a local time that the spring change skips
never happens (a span starting inside the gap opens when the clock jumps past it), and a local
time that the autumn change repeats happens twice (a span that covers it is open both times).
``next_open`` finds exactly the first instant at which ``is_open`` becomes true, so a contact
scheduled for it is never refused by the check that runs at dial time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callkit.errors import InvalidInput
from dialer.spec import WEEKDAYS, CallingWindows, Span

#: How far ahead ``next_open`` looks: a window closed for longer is reported as never opening.
HORIZON: Final = timedelta(days=366)
DAY_MINUTES: Final = 24 * 60


def zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name``; an unknown or malformed name is refused, naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise InvalidInput(
            f"unknown timezone {name!r}: expected an IANA name such as Europe/Moscow or "
            "America/New_York"
        ) from exc


def is_open(windows: CallingWindows, tz: ZoneInfo, now: datetime) -> bool:
    """Whether ``now`` (an aware instant) falls inside the calling hours on the callee's clock."""
    return _open_at(windows, set(windows.holidays), tz, now)


def next_open(windows: CallingWindows, tz: ZoneInfo, now: datetime) -> datetime | None:
    """The first UTC instant at or after ``now`` at which the window is open.

    None when it stays closed for the next 366 days (no hours, or every open day a holiday).
    """
    holidays = set(windows.holidays)
    now = utc(now)
    if _open_at(windows, holidays, tz, now):
        return now
    limit = now + HORIZON
    best: datetime | None = None
    # A window opens either where a span starts or where a clock change moves the wall clock
    # into a span (the spring gap swallowing a start, the autumn repeat re-entering a span).
    # One more day is scanned after the first hit: a clock change at midnight can put a
    # candidate of one local day before the last ones of the previous day.
    for day in _local_days(tz, now, limit):
        found = [
            t
            for t in _candidates(windows, tz, day)
            if now <= t <= limit and _open_at(windows, holidays, tz, t)
        ]
        if found:
            if best is not None:
                return min(best, *found)
            best = min(found)
        elif best is not None:
            return best
    return best


def window_problems(windows: CallingWindows) -> list[str]:
    """What makes these windows unusable, one message per problem naming the day and span."""
    problems: list[str] = []
    any_open = False
    for day in WEEKDAYS:
        valid: list[Span] = []
        for span in windows.hours.get(day, []):
            start, end = span.minutes()
            if start >= end:
                problems.append(f"{day} {span.start}-{span.end}: the start must be before the end")
            else:
                valid.append(span)
        valid.sort(key=Span.minutes)
        # Each span is checked against the one reaching furthest before it, which overlaps it
        # whenever any earlier span does.
        reach: Span | None = None
        for span in valid:
            if reach is not None and span.minutes()[0] < reach.minutes()[1]:
                problems.append(
                    f"{day}: {reach.start}-{reach.end} and {span.start}-{span.end} overlap"
                )
            if reach is None or span.minutes()[1] > reach.minutes()[1]:
                reach = span
        any_open = any_open or bool(valid)
    if not any_open:
        problems.append("no calling hours on any day: the campaign would never call")
    return problems


def describe(windows: CallingWindows) -> str:
    """The weekly hours in a line, days with the same hours grouped: ``mon-fri 09:00-20:00``."""
    rows: list[tuple[str, str, str]] = []  # first day, last day, hours
    for day in WEEKDAYS:
        spans = sorted(windows.hours.get(day, []), key=Span.minutes)
        hours = ", ".join(f"{s.start}-{s.end}" for s in spans) or "closed"
        if rows and rows[-1][2] == hours:
            rows[-1] = (rows[-1][0], day, hours)
        else:
            rows.append((day, day, hours))
    return "; ".join(
        f"{first if first == last else f'{first}-{last}'} {hours}" for first, last, hours in rows
    )


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is refused, since its zone would be a guess."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware instant, got the naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def _open_at(windows: CallingWindows, holidays: set[date], tz: ZoneInfo, now: datetime) -> bool:
    local = utc(now).astimezone(tz)
    if local.date() in holidays:
        return False
    minute = local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60
    return any(
        start <= minute < end
        for start, end in (s.minutes() for s in windows.hours.get(WEEKDAYS[local.weekday()], []))
    )


def _local_days(tz: ZoneInfo, start: datetime, limit: datetime) -> Iterator[date]:
    day, last = start.astimezone(tz).date(), limit.astimezone(tz).date()
    while day <= last:
        yield day
        day += timedelta(days=1)


def _candidates(windows: CallingWindows, tz: ZoneInfo, day: date) -> list[datetime]:
    """Instants on local ``day`` at which the window may open: span starts and clock changes."""
    found: list[datetime] = []
    for span in windows.hours.get(WEEKDAYS[day.weekday()], []):
        start, end = span.minutes()
        if start < end:
            found.extend(_wall_instants(tz, day, time(start // 60, start % 60)))
    found.extend(_clock_changes(tz, day))
    return sorted(set(found))


def _wall_instants(tz: ZoneInfo, day: date, wall: time) -> list[datetime]:
    """The UTC instants at which the local clock shows ``wall`` on ``day``: none in a spring gap,
    two in an autumn repeat, else one."""
    naive = datetime.combine(day, wall)
    instants = []
    for fold in (0, 1):
        instant = naive.replace(tzinfo=tz, fold=fold).astimezone(UTC)
        if instant.astimezone(tz).replace(tzinfo=None) == naive:
            instants.append(instant)
    return instants


def _clock_changes(tz: ZoneInfo, day: date) -> list[datetime]:
    """The UTC instant of a change of the zone's offset during local ``day``, if there is one."""
    begin = _day_start(tz, day)
    end = _day_start(tz, day + timedelta(days=1))
    before, after = begin.astimezone(tz).utcoffset(), end.astimezone(tz).utcoffset()
    if before == after:
        return []
    # Offsets change at whole seconds; bisect to the first second showing the new offset.
    lo, hi = int(begin.timestamp()), int(end.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, UTC).astimezone(tz).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return [datetime.fromtimestamp(hi, UTC)]


def _day_start(tz: ZoneInfo, day: date) -> datetime:
    # Consecutive days share their boundary, so every instant belongs to exactly one scanned day
    # even where midnight itself falls in a gap.
    return datetime.combine(day, time(0)).replace(tzinfo=tz).astimezone(UTC)
