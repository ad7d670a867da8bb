"""Frequency caps: how often one number may be dialled, across all campaigns.

Rolling windows, not calendar ones: an attempt counts against the day for the 24 hours after
it, against the week for 7 days and against the month for 30 days, so a cap cannot be doubled
by calling just before and just after midnight.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from dialer.core.windows import utc
from dialer.spec import FrequencyCaps

DAY: Final = timedelta(hours=24)
WEEK: Final = timedelta(days=7)
MONTH: Final = timedelta(days=30)


def cap_allows(caps: FrequencyCaps, past: Sequence[datetime], now: datetime) -> datetime | None:
    """None if another attempt is allowed at ``now``; else the earliest UTC instant it would be.

    ``past``: the instants of earlier attempts to the number (aware, any order).
    """
    now = utc(now)
    attempts = sorted(utc(t) for t in past)
    release: datetime | None = None
    for limit, length in ((caps.per_day, DAY), (caps.per_week, WEEK), (caps.per_month, MONTH)):
        # An attempt at t counts while now - t < length.
        inside = [t for t in attempts if t > now - length]
        if len(inside) >= limit:
            # The cap frees up when enough of the oldest attempts have aged out to leave
            # limit - 1 of them; the caps only shrink with time, so the latest release wins.
            frees_at = inside[len(inside) - limit] + length
            release = frees_at if release is None else max(release, frees_at)
    return release
