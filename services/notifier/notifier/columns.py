"""The sheet's columns: what each holds, its header per locale, and the row for an outcome.

The default layout is the original worksheet "Лист4" (timestamp, client name, phone, age, weight,
symptoms, study type, appointment date/time, price, status) followed by the call's own facts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from callkit.contracts.outcome import CallOutcome
from callkit.errors import ConfigError

Locale = Literal["ru", "en"]


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    ru: str
    en: str
    value: Callable[[CallOutcome], str]

    def label(self, locale: Locale) -> str:
        return self.ru if locale == "ru" else self.en


def _num(x: float | None) -> str:
    if x is None:
        return ""
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


def _appointment(o: CallOutcome) -> str:
    return " ".join(p for p in (o.slots.appointment_date, o.slots.appointment_time) if p)


def _price(o: CallOutcome) -> str:
    if o.slots.price is None:
        return ""
    return f"{_num(o.slots.price)} {o.slots.currency or ''}".strip()


def _answered_by(o: CallOutcome) -> str:
    return o.amd.answered_by if o.amd is not None else ""


def _callback_at(o: CallOutcome) -> str:
    at = (o.slots.model_extra or {}).get("callback_at")
    return str(at) if at else ""


COLUMNS: dict[str, Column] = {
    c.key: c
    for c in [
        Column(
            "timestamp",
            "Timestamp",
            "Timestamp",
            lambda o: o.ended_at.isoformat(timespec="seconds"),
        ),
        Column("client_name", "Имя клиента", "Client name", lambda o: o.slots.client_name or ""),
        Column("phone", "Телефон", "Phone", lambda o: o.slots.phone or o.caller or ""),
        Column("age", "Возраст", "Age", lambda o: _num(o.slots.age)),
        Column("weight", "Вес", "Weight (kg)", lambda o: _num(o.slots.weight_kg)),
        Column("symptoms", "Симптомы", "Symptoms", lambda o: o.slots.symptoms or ""),
        Column("study_type", "Тип исследования", "Study", lambda o: o.slots.study_type or ""),
        Column("appointment", "Дата/время записи", "Appointment", _appointment),
        Column("price", "Стоимость", "Price", _price),
        Column("status", "Статус", "Status", lambda o: o.status),
        Column("call_id", "ID звонка", "Call ID", lambda o: o.call_id),
        Column("direction", "Направление", "Direction", lambda o: o.direction),
        Column("campaign", "Кампания", "Campaign", lambda o: o.campaign_id or ""),
        Column("duration", "Длительность, с", "Duration (s)", lambda o: _num(round(o.duration_s))),
        Column("summary", "Итог", "Summary", lambda o: o.summary or ""),
        Column("recording", "Запись", "Recording", lambda o: o.recording_path or ""),
        # Outbound extras, for a layout that wants them (NOTIFY_COLUMNS); the default layout
        # keeps the columns an existing worksheet already has.
        Column("answered_by", "Кто ответил", "Answered by", _answered_by),
        Column(
            "attempts",
            "Попыток",
            "Attempts",
            lambda o: str((o.model_extra or {}).get("attempts", "")),
        ),
        Column("callback_at", "Перезвонить", "Call back at", _callback_at),
    ]
}
DEFAULT_LAYOUT = tuple(COLUMNS)[: tuple(COLUMNS).index("recording") + 1]


@dataclass(frozen=True)
class Layout:
    columns: tuple[Column, ...]
    locale: Locale

    @classmethod
    def build(cls, keys: Sequence[str] = DEFAULT_LAYOUT, locale: Locale = "ru") -> Layout:
        unknown = [k for k in keys if k not in COLUMNS]
        if unknown:
            raise ConfigError(f"unknown column(s) {unknown}; available: {', '.join(COLUMNS)}")
        if "call_id" not in keys:
            raise ConfigError(
                "the layout must include call_id: it is how a call is written exactly once"
            )
        return cls(tuple(COLUMNS[k] for k in keys), locale)

    @property
    def header(self) -> list[str]:
        return [c.label(self.locale) for c in self.columns]

    @property
    def call_id_index(self) -> int:
        return next(i for i, c in enumerate(self.columns) if c.key == "call_id")

    def row(self, outcome: CallOutcome) -> list[str]:
        return [c.value(outcome) for c in self.columns]
