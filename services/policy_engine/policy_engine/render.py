"""Filling prompt templates: dates, times, prices and call-back times said the way a person
says them."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, time, timedelta

import phonenumbers
from phonenumbers import PhoneMetadata

from policy_engine.parsers import Callback

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
# One, few and many: 1 рубль, 2 рубля, 5 рублей.
_CURRENCY_RU = {
    "USD": ("доллар", "доллара", "долларов"),
    "RUB": ("рубль", "рубля", "рублей"),
    "EUR": ("евро", "евро", "евро"),
}
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
        forms = _CURRENCY_RU.get(currency)
        if forms is None:
            return f"{value} {currency}"
        if not float(amount).is_integer():
            return f"{value} {forms[1]}"  # "12.50 рубля"
        return f"{value} {_ru_plural(int(amount), *forms)}"
    symbol = _CURRENCY_EN.get(currency)
    return f"{symbol}{value}" if symbol else f"{value} {currency}"


def _ru_plural(n: int, one: str, few: str, many: str) -> str:
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


def _spoken_wait(minutes: int, locale: str) -> str:
    hours, rest = divmod(minutes, 60)
    if locale == "ru":
        if minutes == 30:
            return "через полчаса"
        if minutes == 60:
            return "через час"
        if not rest:
            return f"через {hours} {_ru_plural(hours, 'час', 'часа', 'часов')}"
        return f"через {minutes} {_ru_plural(minutes, 'минуту', 'минуты', 'минут')}"
    if minutes == 30:
        return "in half an hour"
    if minutes == 60:
        return "in an hour"
    if not rest:
        return f"in {hours} hours"
    return f"in {minutes} minute{'s' if minutes != 1 else ''}"


def spoken_callback(callback: Callback, locale: str, today: date) -> str:
    """When the clinic will call back, as the caller put it: "tomorrow after 6 PM", "on Monday,
    November 30", "in 2 hours" ("завтра после 18:00", "во вторник, 24 ноября", "через 2 часа")."""
    if callback.in_minutes is not None:
        return _spoken_wait(callback.in_minutes, locale)
    parts = []
    if callback.day is not None:
        if callback.day == today:
            parts.append("сегодня" if locale == "ru" else "today")
        elif callback.day == today + timedelta(days=1):
            parts.append("завтра" if locale == "ru" else "tomorrow")
        elif locale == "ru":
            said = spoken_date(callback.day, locale)
            parts.append(("во " if said.startswith("вт") else "в ") + said)
        else:
            parts.append("on " + spoken_date(callback.day, locale))
    if callback.clock is not None:
        if locale == "ru":
            parts.append(
                ("после " if callback.after else "в ") + spoken_time(callback.clock, locale)
            )
        else:
            parts.append(
                ("after " if callback.after else "at ") + spoken_time(callback.clock, locale)
            )
    return " ".join(parts)


def spoken_phone(e164: str, country_code: str, locale: str = "en") -> str:
    """The number read back in the groups its country writes it in, without the clinic's own
    country code (a number from abroad keeps its own): "+15552525252" is "5 5 5, 2 5 2, 5 2 5 2"
    (digit by digit), and in Russian "+79161234567" is "916, 123, 45, 67" (each group said as a
    number, as Russians read numbers; a group that starts with 0 digit by digit)."""
    groups = _phone_groups(e164, country_code)
    if locale == "ru":
        return ", ".join(g if not g.startswith("0") else " ".join(g) for g in groups)
    return ", ".join(" ".join(group) for group in groups)


def _phone_groups(e164: str, country_code: str) -> list[str]:
    try:
        number = phonenumbers.parse(e164 if e164.startswith("+") else "+" + e164)
    except phonenumbers.NumberParseException:
        number = None
    if number is not None and phonenumbers.is_possible_number(number):
        home = str(number.country_code) == country_code
        written = phonenumbers.format_number(
            number,
            phonenumbers.PhoneNumberFormat.NATIONAL
            if home
            else phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        )
        groups = re.findall(r"\d+", written)
        region = phonenumbers.region_code_for_number(number)
        metadata = PhoneMetadata.metadata_for_region(region) if region else None
        prefix = metadata.national_prefix if metadata else None
        national = phonenumbers.national_significant_number(number)
        if home and len(groups) > 1 and groups[0] == prefix and "".join(groups[1:]) == national:
            groups = groups[1:]  # "8 (916) 123-45-67": the trunk prefix is not said back
        return groups
    # Not a number libphonenumber knows (a short one keyed in): threes, then the last four.
    digits = e164.lstrip("+")
    if digits.startswith(country_code) and len(digits) > 10:
        digits = digits[len(country_code) :]
    head, tail = (digits[:-4], digits[-4:]) if len(digits) > 4 else ("", digits)
    threes = [head[max(0, i - 3) : i] for i in range(len(head), 0, -3)][::-1]
    return [*threes, tail]


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
