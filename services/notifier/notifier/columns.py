"""The sheet's columns: what each holds, its header per locale, and the row for an outcome.

The default layout is the original worksheet "Лист4" (timestamp, client name, phone, age, weight,
symptoms, study type, appointment date/time, price, status) followed by the call's own facts.
The values are written in the layout's locale and times in the clinic's zone (``wording``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callkit.contracts.outcome import CallOutcome
from callkit.errors import ConfigError
from notifier.wording import Locale, Wording

#: The default clinic's zone (prompts/clinic/schedule.yaml); NOTIFY_TIMEZONE sets the sheet's.
DEFAULT_TIMEZONE = "America/New_York"


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    ru: str
    en: str
    value: Callable[[CallOutcome, Wording], str]

    def label(self, locale: Locale) -> str:
        return self.ru if locale == "ru" else self.en


def _num(x: float | None) -> str:
    if x is None:
        return ""
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


def _appointment(o: CallOutcome, w: Wording) -> str:
    return w.appointment(o.slots.appointment_date, o.slots.appointment_time)


def _price(o: CallOutcome, w: Wording) -> str:
    if o.slots.price is None:
        return ""
    return w.money(_num(o.slots.price), o.slots.currency)


def _answered_by(o: CallOutcome, w: Wording) -> str:
    return w.answered_by(o.amd.answered_by) if o.amd is not None else ""


def _callback_at(o: CallOutcome, w: Wording) -> str:
    at = (o.slots.model_extra or {}).get("callback_at")
    if not at:
        return ""
    try:
        return w.moment(datetime.fromisoformat(str(at)))
    except ValueError:
        return str(at)


COLUMNS: dict[str, Column] = {
    c.key: c
    for c in [
        Column(
            "timestamp",
            "Timestamp",
            "Timestamp",
            lambda o, w: w.moment(o.ended_at),
        ),
        Column("client_name", "Имя клиента", "Client name", lambda o, w: o.slots.client_name or ""),
        Column("phone", "Телефон", "Phone", lambda o, w: o.slots.phone or o.caller or ""),
        Column("age", "Возраст", "Age", lambda o, w: _num(o.slots.age)),
        Column("weight", "Вес", "Weight (kg)", lambda o, w: _num(o.slots.weight_kg)),
        Column("symptoms", "Симптомы", "Symptoms", lambda o, w: o.slots.symptoms or ""),
        Column("study_type", "Тип исследования", "Study", lambda o, w: o.slots.study_type or ""),
        Column("appointment", "Дата/время записи", "Appointment", _appointment),
        Column("price", "Стоимость", "Price", _price),
        Column("status", "Статус", "Status", lambda o, w: w.status(o.status)),
        Column("call_id", "ID звонка", "Call ID", lambda o, w: o.call_id),
        Column("direction", "Направление", "Direction", lambda o, w: w.direction(o.direction)),
        Column("campaign", "Кампания", "Campaign", lambda o, w: o.campaign_id or ""),
        Column(
            "duration", "Длительность, с", "Duration (s)", lambda o, w: _num(round(o.duration_s))
        ),
        Column("summary", "Итог", "Summary", lambda o, w: w.summary(o)),
        Column("recording", "Запись", "Recording", lambda o, w: o.recording_path or ""),
        # Outbound extras, for a layout that wants them (NOTIFY_COLUMNS); the default layout
        # keeps the columns an existing worksheet already has.
        Column("answered_by", "Кто ответил", "Answered by", _answered_by),
        Column(
            "attempts",
            "Попыток",
            "Attempts",
            lambda o, w: str((o.model_extra or {}).get("attempts", "")),
        ),
        Column("callback_at", "Перезвонить", "Call back at", _callback_at),
    ]
}
DEFAULT_LAYOUT = tuple(COLUMNS)[: tuple(COLUMNS).index("recording") + 1]


def clinic_zone(name: str) -> ZoneInfo:
    """The clinic's time zone by its IANA name; ConfigError for a name the system does not know."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone {name!r}: give an IANA name such as Europe/Moscow"
        ) from None


@dataclass(frozen=True)
class Layout:
    columns: tuple[Column, ...]
    wording: Wording

    @property
    def locale(self) -> Locale:
        return self.wording.locale

    @classmethod
    def build(
        cls,
        keys: Sequence[str] = DEFAULT_LAYOUT,
        locale: Locale = "ru",
        timezone: str = DEFAULT_TIMEZONE,
    ) -> Layout:
        unknown = [k for k in keys if k not in COLUMNS]
        if unknown:
            raise ConfigError(f"unknown column(s) {unknown}; available: {', '.join(COLUMNS)}")
        if "call_id" not in keys:
            raise ConfigError(
                "the layout must include call_id: it is how a call is written exactly once"
            )
        return cls(tuple(COLUMNS[k] for k in keys), Wording(locale, clinic_zone(timezone)))

    @property
    def header(self) -> list[str]:
        return [c.label(self.locale) for c in self.columns]

    @property
    def call_id_index(self) -> int:
        return next(i for i, c in enumerate(self.columns) if c.key == "call_id")

    def row(self, outcome: CallOutcome) -> list[str]:
        return [c.value(outcome, self.wording) for c in self.columns]
