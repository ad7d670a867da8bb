"""What a campaign is made of, as the API receives it and the store keeps it.

These are data only; the decisions on them (is a window open, may a campaign start, when is the
next attempt) are the core's (:mod:`dialer.core`).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dialer.core.states import Profile, Purpose

WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")


class Span(BaseModel):
    """One stretch of calling hours on a day, local time of the callee, ``start`` < ``end``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: str = Field(examples=["09:00"])
    end: str = Field(examples=["20:00"])

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError(f"{value!r} is not a time of day as HH:MM (00:00 to 24:00)")
        return value

    def minutes(self) -> tuple[int, int]:
        (h1, m1), (h2, m2) = (map(int, t.split(":")) for t in (self.start, self.end))
        return h1 * 60 + m1, h2 * 60 + m2


def _default_hours() -> dict[str, list[Span]]:
    weekday = [Span(start="10:00", end="19:00")]
    return {day: list(weekday) for day in WEEKDAYS[:5]} | {
        "sat": [Span(start="10:00", end="16:00")]
    }


class CallingWindows(BaseModel):
    """Calling hours per weekday (``mon`` … ``sun``; a missing day is closed) and closed dates,
    both in the callee's local time."""

    model_config = ConfigDict(extra="forbid")

    hours: dict[str, list[Span]] = Field(default_factory=_default_hours)
    holidays: list[date] = Field(default_factory=list)

    @field_validator("hours")
    @classmethod
    def _days(cls, value: dict[str, list[Span]]) -> dict[str, list[Span]]:
        unknown = sorted(set(value) - set(WEEKDAYS))
        if unknown:
            raise ValueError(f"unknown weekday(s) {', '.join(unknown)}; use {', '.join(WEEKDAYS)}")
        return value


class RetryPolicy(BaseModel):
    """How often a contact is tried and how long to wait after each kind of failure."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(3, ge=1, le=20, description="Attempts per contact, all causes.")
    busy_after_min: float = Field(10, gt=0, description="Retry delay after a busy line.")
    no_answer_after_min: float = Field(
        180, gt=0, description="Retry delay after no answer (lands at another time of day)."
    )
    failed_after_min: float = Field(
        15, gt=0, description="Retry delay after a network failure (retried once)."
    )
    callback_after_min: float = Field(
        120, gt=0, description="When the callee asked for a callback without a time."
    )
    max_callbacks: int = Field(
        3,
        ge=0,
        le=20,
        description="Callbacks the callee may ask for on top of max_attempts (one asked for on "
        "the last attempt is still made); past them a request counts as an attempt.",
    )
    voicemail_after_min: float | None = Field(
        None, gt=0, description="Retry delay after a voicemail; none: a voicemail ends the contact."
    )


class FrequencyCaps(BaseModel):
    """Most attempts to one number, across all campaigns, per rolling day, week and month."""

    model_config = ConfigDict(extra="forbid")

    per_day: int = Field(2, ge=1)
    per_week: int = Field(5, ge=1)
    per_month: int = Field(10, ge=1)


class CampaignSpec(BaseModel):
    """A campaign as ``POST /campaigns`` takes it (JSON, or form fields next to a CSV)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    purpose: Purpose = Purpose.SERVICE
    profile: Profile = Profile.NONE
    timezone: str = Field(
        "UTC", description="IANA zone for contacts whose own zone is unknown (e.g. Europe/Moscow)."
    )
    default_region: str = Field(
        "US", min_length=2, max_length=2, description="ISO country for numbers without a +code."
    )
    windows: CallingWindows = Field(default_factory=CallingWindows)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    caps: FrequencyCaps = Field(default_factory=FrequencyCaps)
    concurrency: int = Field(2, ge=1, le=500, description="Most calls of this campaign at once.")
    calls_per_second: float = Field(1.0, gt=0, le=100, description="Originate rate per trunk.")
    trunk: str = Field("carrier", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    caller_id: str = Field("", max_length=32, pattern=r"^\+?[0-9]*$")
    originate_timeout_s: int = Field(30, ge=5, le=120)
    locale: str = Field("en", pattern=r"^[a-z]{2}$")
    on_voicemail: Literal["message", "hangup"] = Field(
        "message",
        description="An answering machine: leave the script's message after the beep (with the "
        "clinic's number), or hang up. Either way the attempt is recorded as voicemail.",
    )


Number = Annotated[str, Field(pattern=r"^\+[1-9][0-9]{6,14}$", description="E.164")]


class ContactRow(BaseModel):
    """One imported contact: its number in E.164, its local zone, and the rest of its columns."""

    model_config = ConfigDict(extra="forbid")

    row: int = Field(ge=1, description="Line of the source file (the header is line 1).")
    phone: Number
    name: str | None = None
    timezone: str | None = Field(None, description="IANA zone, from the file or the number.")
    consent: str | None = Field(None, description="A consent reference (required for marketing).")
    fields: dict[str, str] = Field(default_factory=dict)


class RowError(BaseModel):
    row: int
    error: str
    value: str | None = None
