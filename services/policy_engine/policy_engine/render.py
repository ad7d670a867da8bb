"""Filling prompt templates: dates, times and prices said the way a person says them."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, time

_MONTHS_EN = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip
_WEEKDAYS_EN = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTHS_RU = [
    "января", "февраля", "марта", "апреля", "мая", "июня",
    "июля", "августа", "сентября", "октября", "ноября", "декабря",
]  # fmt: skip
_WEEKDAYS_RU = ["понедельник", "вторник", "среду", "четверг", "пятницу", "субботу", "воскресенье"]
_CURRENCY_RU = {"USD": "долларов", "RUB": "рублей", "EUR": "евро"}
_CURRENCY_EN = {"USD": "$", "EUR": "€", "GBP": "£"}


def spoken_date(day: date, locale: str, today: date | None = None) -> str:
    if locale == "ru":
        if today is not None and day == today:
            return "сегодня"
        return f"{_WEEKDAYS_RU[day.weekday()]}, {day.day} {_MONTHS_RU[day.month - 1]}"
    return f"{_WEEKDAYS_EN[day.weekday()]}, {_MONTHS_EN[day.month - 1]} {day.day}"


def spoken_time(t: time, locale: str) -> str:
    if locale == "ru":
        return f"{t.hour}:{t.minute:02d}"
    hour = t.hour % 12 or 12
    suffix = "AM" if t.hour < 12 else "PM"
    return f"{hour} {suffix}" if t.minute == 0 else f"{hour}:{t.minute:02d} {suffix}"


def spoken_times(times: Sequence[time], locale: str) -> str:
    words = [spoken_time(t, locale) for t in times]
    if len(words) <= 1:
        return "".join(words)
    joiner = " или " if locale == "ru" else " or "
    return ", ".join(words[:-1]) + joiner + words[-1]


def spoken_price(amount: float, currency: str, locale: str) -> str:
    value = f"{amount:.0f}" if float(amount).is_integer() else f"{amount:.2f}"
    if locale == "ru":
        return f"{value} {_CURRENCY_RU.get(currency, currency)}"
    symbol = _CURRENCY_EN.get(currency)
    return f"{symbol}{value}" if symbol else f"{value} {currency}"


def spoken_phone(e164: str, country_code: str) -> str:
    """The number read back digit by digit in groups, without the clinic's own country code:
    "+15552525252" is "5 5 5, 2 5 2, 5 2 5 2" (threes, then the last four)."""
    digits = e164.lstrip("+")
    if digits.startswith(country_code) and len(digits) > 10:
        digits = digits[len(country_code) :]
    head, tail = (digits[:-4], digits[-4:]) if len(digits) > 4 else ("", digits)
    groups = [head[max(0, i - 3) : i] for i in range(len(head), 0, -3)][::-1]
    return ", ".join(" ".join(group) for group in [*groups, tail])


def fill(template: str, values: Mapping[str, str | None]) -> str | None:
    """The template with its placeholders filled; None when one of them has no value yet."""
    missing = False

    def sub(m: re.Match[str]) -> str:
        nonlocal missing
        value = values.get(m.group(1))
        if value is None:
            missing = True
            return ""
        return value

    text = re.sub(r"\{(\w+)\}", sub, template)
    return None if missing else text


def capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]
