"""Deterministic parsers for what must be exact: yes/no, phone numbers, ages, weights, dates,
times, durations, names and the caller's intents.

Each parser is a pure function of the utterance (and, where it matters, of today's date in the
clinic's timezone or of the times just offered), so they are table-tested. Every word they look
for comes from the script's lexicon, prompts/clinic/lexicon.yaml, as a ``Lexicon`` for the call's
locale and ``Words`` for every locale: yes and no, intents, weekdays, months, ordinals, units,
the cues before a name, an age or a weight, words that are never a name, and the words the
grammar is made of (clock times: "half past", "без четверти"; durations: "since", "a couple
of"; the "plus" of a phone number, the breaks in a spelled name). What stays here is grammar:
how numbers, phone numbers, names, ages, weights, dates, clock times, durations and call-back
times are put together around those words (written forms such as "3rd", "5pm" and "-го", the
articles of English dates and durations, "the 3rd one", "since the start of this month", and the
endings of Russian surnames are part of it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import phonenumbers
from phonenumbers import PhoneMetadata

from callkit.spoken import DEFAULT_LOCALE, numbers_to_digits
from policy_engine.lexicon import Lexicon, Words, alternation, longest_first, phrase_pattern

# "Tom", "O'Neill", "Smith-Jones", "Иванова".
_NAME_TOKEN = r"[A-ZА-ЯЁ](?:['’][A-ZА-ЯЁ][a-zа-яё]+|[a-zа-яё'’-]+)"
_NAME = rf"({_NAME_TOKEN}(?:\s+{_NAME_TOKEN}){{0,2}})"
# After a first name said in lower case ("меня зовут анна сергеевна"): a patronymic or a
# surname by its ending, which no other word after a name has.
_RU_PATRONYMIC_OR_SURNAME = (
    r"[а-яё]+(?:ович|евич|ич|овна|евна|ична|инична|ов|ова|ев|ева|ёв|ёва|ин|ина|ын|ына"
    r"|ский|ская|цкий|цкая|енко|ук|юк)\b"
)


def normalize(text: str, words: Words, locale: str = DEFAULT_LOCALE) -> str:
    """One spelling for apostrophes and spaces, spoken numbers as digits (in the call's
    language: "forty five", "сорок пять")."""
    text = text.replace("’", "'").replace("‘", "'")
    # A pause inside a sentence, written as an ellipsis ("My name is... Peter Brown"), joins
    # what comes before and after it; one that ends the utterance is a full stop.
    text = re.sub(r"\s*(?:\.{2,}|…)\s*(?=\w)", " ", text)
    text = re.sub(r"(?:\.{2,}|…)", ".", text)
    if words.fillers is not None:
        text = words.fillers.sub(lambda m: m.group("keep") or " ", text)
    text = numbers_to_digits(text, locale)
    # An "oh" left among the words is a sound ("Oh, hi"), not a zero: those are digits now.
    text = words.interjections.sub(" ", text)
    if words.spoken_numbers:  # the lexicon's own number words ("пару")
        spoken = re.compile(rf"(?<!\w)({'|'.join(words.spoken_numbers)})(?!\w)", re.I)
        text = spoken.sub(lambda m: str(words.spoken_numbers[m.group(1).lower()]), text)
    text = re.sub(r"\s+([,.!?])", r"\1", text)  # "Um, hi" is ", hi" now
    text = re.sub(r"^[\s,]+|(?<=[.!?,])[\s,]*,", " ", text)
    return re.sub(r"\s+", " ", text).strip()


# ---------------------------------------------------------------- yes / no


def parse_yes_no(text: str, lex: Lexicon, words: Words) -> bool | None:
    """True for yes, False for no, None when the utterance says neither."""
    cleaned = words.not_negative.sub(" ", text)  # "no problem", "не против": a yes
    if lex.find(lex.no, cleaned):
        return False
    if cleaned != text or lex.find(lex.yes, cleaned):
        return True
    return None


# ---------------------------------------------------------------- phone numbers


def region_of(country_code: str) -> str:
    """The region whose numbers a clinic's callers dial without their country code: "1" is
    "US", "7" is "RU", "44" is "GB"; a region code ("GB") is itself."""
    if country_code.isdigit():
        return phonenumbers.region_code_for_country_code(int(country_code))
    return country_code.upper()


def plausible_number(number: phonenumbers.PhoneNumber) -> bool:
    """A valid number, or one of a possible length with its country's general shape: the
    fictional +1 555 numbers and the UK's 07700 900 range pass, "123 456 7890" (no North
    American area code starts with 1) does not."""
    if phonenumbers.is_valid_number(number):
        return True
    if not phonenumbers.is_possible_number(number):
        return False
    code = number.country_code
    region = phonenumbers.region_code_for_country_code(code) if code else None
    metadata = PhoneMetadata.metadata_for_region(region) if region else None
    general = metadata.general_desc if metadata else None
    pattern = general.national_number_pattern if general else None
    national = phonenumbers.national_significant_number(number)
    return bool(pattern and re.fullmatch(pattern, national))


def parse_phone(text: str, default_country_code: str, words: Words) -> str | None:
    """A phone number in E.164 form ("+15551234567"), however it was grouped or spoken, read
    with libphonenumber for the clinic's country (``default_country_code``: "1", "7", "44"…, or
    a region such as "GB"); a number that is not plausible there is no number."""
    region = region_of(default_country_code)
    span = rf"(?:\+|\b{words.plus}\s+)?\d[\d\s().,-]{{5,}}\d"  # "+1 555…", "plus 1 555…"
    for m in re.finditer(span, text, re.I):
        raw = m.group(0)
        international = not raw[0].isdigit()
        # "555 123 4567, 45 years": the number, then something else after a comma.
        parts = re.split(r"(?<=\d),\s*(?=\d)", raw)
        for n in range(len(parts), 0, -1):
            digits = re.sub(r"\D", "", ",".join(parts[:n]))
            if len(digits) < 6:
                break
            try:
                number = phonenumbers.parse(("+" if international else "") + digits, region)
            except phonenumbers.NumberParseException:
                continue
            if plausible_number(number):
                return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


# ---------------------------------------------------------------- age and weight

_WEIGHT = r"(\d{2,3}(?:[.,]\d)?)"
LB_TO_KG = 0.45359237


def parse_age(text: str, words: Words) -> int | None:
    """Years, from a number with an age's unit after it or its cue before it ("I'm 42", not
    "I'm 80 kilos")."""
    for pattern in (
        rf"\b(\d{{1,3}})\s*{words.age_units}\b",
        rf"\b{words.age_cues}\s+(\d{{1,3}})\b(?!\s*(?:{words.kg_units}|{words.lb_units}|%))",
    ):
        m = re.search(pattern, text, re.I)
        if m and 1 <= int(m.group(1)) <= 120:
            return int(m.group(1))
    return None


def parse_weight(text: str, words: Words) -> float | None:
    """Kilograms, from kilograms or pounds."""
    m = re.search(rf"\b{_WEIGHT}\s*{words.kg_units}\b", text, re.I)
    if m:
        return _kg(float(m.group(1).replace(",", ".")))
    m = re.search(rf"\b{_WEIGHT}\s*{words.lb_units}\b", text, re.I)
    if m:
        return _kg(float(m.group(1).replace(",", ".")) * LB_TO_KG)
    m = re.search(rf"\b{words.weight_cues}\s+(?:{words.roughly}\s+)?{_WEIGHT}\b", text, re.I)
    if m:
        return _kg(float(m.group(1).replace(",", ".")))
    return None


def _kg(value: float) -> float | None:
    return round(value, 1) if 20 <= value <= 300 else None


def parse_age_weight(text: str, words: Words) -> tuple[int | None, float | None]:
    """Age and weight when the caller was asked for both: labelled numbers first, then bare ones
    in the order asked ("45 and 80" is 45 years, 80 kg)."""
    age, weight = parse_age(text, words), parse_weight(text, words)
    if age is not None and weight is not None:
        return age, weight
    used = {str(age)} if age is not None else set()
    bare = [
        n
        for n in re.findall(r"(?<![\d.,:])\d{1,3}(?:[.,]\d)?(?![\d:])", text)
        if n not in used and (weight is None or float(n.replace(",", ".")) != weight)
    ]
    if age is None and weight is None and len(bare) >= 2:
        a = int(float(bare[0].replace(",", ".")))
        return (a if 1 <= a <= 120 else None), _kg(float(bare[1].replace(",", ".")))
    if len(bare) == 1:
        value = float(bare[0].replace(",", "."))
        if age is None and weight is not None and 1 <= value <= 120:
            return int(value), weight
        if weight is None and age is not None:
            return age, _kg(value)
    return age, weight


# ---------------------------------------------------------------- dates


def _next_weekday(today: date, weekday: int) -> date:
    days = (weekday - today.weekday()) % 7 or 7
    return today + timedelta(days=days)


def _day_in_month(today: date, day: int, month: int | None) -> date | None:
    """The next ``day`` of ``month`` from today on; with no month, of this month or the next
    that has that day ("the 31st" said in November is December 31st)."""
    if not 1 <= day <= 31:
        return None
    if month is not None:
        for year in (today.year, today.year + 1):
            try:
                candidate = date(year, month, day)
            except ValueError:
                return None
            if candidate >= today:
                return candidate
        return None
    year, m = today.year, today.month
    for _ in range(12):
        try:
            if date(year, m, day) >= today:
                return date(year, m, day)
        except ValueError:
            pass  # no such day in this month: the next
        year, m = (year + 1, 1) if m == 12 else (year, m + 1)
    return None


def parse_date(text: str, today: date, words: Words, *, bare_day: bool = True) -> date | None:
    """A calendar date from what the caller said, relative to ``today`` (the clinic's date).

    ``bare_day``: a day of the month said alone ("the 3rd", "пятого числа") is a date; not
    while times are offered, where "the third one" picks the third of them.
    """
    t = text.lower()
    m = re.search(r"\b(\d{4})-(\d{2})-(\d{2})\b", t)
    if m:
        try:
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            return None
    for pattern, days in words.relative_days:
        if pattern.search(t):
            return today + timedelta(days=days)
    units = "|".join(
        re.escape(w) for w, unit in words.duration_units.items() if unit in ("day", "week")
    )
    m = (
        re.search(rf"\b{words.later_by}\s+(?:(\d{{1,2}}|{words.one_of})\s+)?({units})\b", t)
        if units
        else None
    )
    if m:  # "in 3 days", "in a week", "через неделю", "через 3 дня"
        n = int(m.group(1)) if m.group(1) and m.group(1).isdigit() else 1
        return today + timedelta(days=n * (7 if words.duration_units[m.group(2)] == "week" else 1))
    months = words.months
    month_names = "|".join(months)
    t = _day_ordinals_as_digits(t, month_names, words)
    m = re.search(rf"\b({month_names})\s+(?:the\s+)?(\d{{1,2}})(?:st|nd|rd|th)?\b", t)
    if m:
        return _day_in_month(today, int(m.group(2)), months[m.group(1)])
    m = re.search(rf"\b(\d{{1,2}})(?:st|nd|rd|th|-?го|-?е)?\s+(?:of\s+)?({month_names})\b", t)
    if m:
        return _day_in_month(today, int(m.group(1)), months[m.group(2)])
    m = re.search(r"\bthe (\d{1,2})(?:st|nd|rd|th)\b(?!\s+one\b)", t)
    if m and bare_day:
        return _day_in_month(today, int(m.group(1)), None)
    m = re.search(rf"\b(\d{{1,2}})(?:th|-?го|-?е)?\s+{words.day_of_month}\b", t)
    if m and bare_day:  # "пятого числа"
        return _day_in_month(today, int(m.group(1)), None)
    m = re.search(r"(?<![\d:])(\d{1,2})/(\d{1,2})(?![\d/])", t)
    if m:
        return _day_in_month(today, int(m.group(2)), int(m.group(1)))
    next_week = bool(words.next_week.search(t))
    said = [
        (m.start(), weekday, bool(m.group(1)))
        for name, weekday in words.weekdays.items()
        for m in re.finditer(rf"\b({words.next_one} )?{name}\b", t)
    ]
    if said:
        # "Thursday. Actually no, make it Friday": the last one said.
        _, weekday, next_one = max(said)
        if next_week or next_one:  # "next week, maybe Wednesday", "next Tuesday": that week's
            return _next_weekday(today, 0) + timedelta(days=weekday)
        return _next_weekday(today, weekday)
    if next_week:
        return _next_weekday(today, 0)
    return None


def _day_ordinals_as_digits(t: str, month_names: str, words: Words) -> str:
    """A day said as an ordinal next to a month ("december the first", "the 20 first of
    may") with digits ("december the 1st"), so the month's patterns read it."""
    if not words.day_ordinals:
        return t
    names = "|".join(sorted(words.day_ordinals, key=len, reverse=True))
    day = rf"(?:([23]0)[\s-]?)?\b({names})\b"

    def digits(tens: str | None, word: str) -> str:
        value = words.day_ordinals[word]
        return f"{int(tens or 0) + value if value < 10 else value}th"

    t = re.sub(
        rf"\b({month_names}) (?:the )?{day}",
        lambda m: f"{m.group(1)} {digits(m.group(2), m.group(3))}",
        t,
    )
    return re.sub(
        rf"(?:the )?{day}(?= (?:of )?(?:{month_names}|{words.day_of_month})\b)",
        lambda m: digits(m.group(1), m.group(2)),
        t,
    )


# ---------------------------------------------------------------- times


def parse_time(
    text: str,
    words: Words,
    offered: Sequence[time] = (),
    opens: time = time(8, 0),
) -> time | None:
    """A clock time, or one of the ``offered`` times picked by position or part of day.

    A bare hour before opening time is taken as afternoon ("at 3" is 15:00 when the clinic
    opens at 8).
    """
    t = text.lower()
    if words.noon.search(t):
        return time(12, 0)
    said = _russian_clock(t, words, opens)
    if said is not None:
        return said
    if words.meridiem:
        m = re.search(
            rf"\b(\d{{1,2}})(?:[:.](\d{{2}}))?(?:\s+{words.hour_words})?"
            rf"(?:\s+(\d{{2}})(?:\s+{words.minute_words})?)?"
            rf"\s+({'|'.join(map(re.escape, words.meridiem))})(?!\w)",
            t,
        )
        if m:  # "в 3 часа дня", "к 9 утра", "at 8 in the evening"
            minute = int(m.group(2) or m.group(3) or 0)
            return _clock(int(m.group(1)), minute, words.meridiem[m.group(4)][0], opens)
    said_minutes = {**words.minutes_past, **{w: -n for w, n in words.minutes_to.items()}}
    m = (
        re.search(rf"\b({alternation(longest_first(said_minutes))}) (\d{{1,2}})\b", t)
        if said_minutes
        else None
    )
    if m:  # "half past 3", "quarter to 4"
        minutes, hour = said_minutes[m.group(1)], int(m.group(2))
        if minutes > 0:
            return _clock(hour, minutes, None, opens)
        return _clock(hour - 1, 60 + minutes, None, opens)
    m = re.search(r"\b(\d{1,2})[:.](\d{2})\s*([ap])?\.?\s*m?\b", t)
    if m:
        return _clock(int(m.group(1)), int(m.group(2)), m.group(3), opens)
    m = re.search(r"\b(\d{1,2})\s*([ap])\.?\s?m\b\.?", t)
    if m:
        return _clock(int(m.group(1)), 0, m.group(2), opens)
    m = re.search(r"\b(\d{1,2}) (\d{2})\b", t)  # "ten thirty" after numbers became digits
    if m and int(m.group(2)) in (0, 15, 30, 45):
        return _clock(int(m.group(1)), int(m.group(2)), None, opens)
    m = re.search(
        rf"\b(\d{{1,2}}) {words.oclock}\b|\b{words.clock_at}\s+(\d{{1,2}})\b(?![:.]\d)", t
    )
    if m:
        return _clock(int(m.group(1) or m.group(2)), 0, None, opens)
    if offered:
        picked = [
            position for word, position in words.ordinals.items() if re.search(rf"\b{word}\b", t)
        ]
        m = re.search(r"\b([1-9])(?:st|nd|rd|th)\b", t)  # "the 3rd one"
        picked += [int(m.group(1))] if m else []
        for position in picked:
            index = position - 1 if position > 0 else len(offered) + position
            if 0 <= index < len(offered):
                return offered[index]
        for word, (start, end) in words.day_parts.items():
            if re.search(rf"\b{word}", t):
                for slot in offered:
                    if start <= slot.hour < end:
                        return slot
        bare = re.fullmatch(r"\D*?(\d{1,2})\D*", t)
        if bare:  # "2, please": an offered hour ("the later one" is no hour)
            said = _clock(int(bare.group(1)), 0, None, opens)
            if said is not None and any(slot.hour == said.hour for slot in offered):
                return said
    return None


def _russian_clock(t: str, words: Words, opens: time) -> time | None:
    """Times said the Russian way: "в половине третьего" (2:30), "без пятнадцати три" (2:45),
    "в час дня" (1 PM); the ordinal hours are the lexicon's ordinal days ("третьего")."""
    hours = {w: n for w, n in words.day_ordinals.items() if n <= 12}
    if hours:
        names = "|".join(sorted(hours, key=len, reverse=True))
        m = re.search(rf"\b{words.half_to_hour}\s*({names})\b", t)
        if m:
            return _clock(hours[m.group(1)] - 1, 30, _meridiem_after(t, m, words), opens)
    m = re.search(
        rf"\b{words.to_hour} (\d{{1,2}}|{words.quarter})(?: {words.minute_words})?"
        rf" (\d{{1,2}}|{words.hour_words})\b",
        t,
    )
    if m:  # "без 15 минут 3", "без четверти час"
        before = int(m.group(1)) if m.group(1).isdigit() else 15
        hour = int(m.group(2)) if m.group(2).isdigit() else 1
        if 0 < before < 60:
            return _clock((hour - 1) or 12, 60 - before, _meridiem_after(t, m, words), opens)
    m = re.search(
        rf"\b(\d{{1,2}})\s+{words.hour_words}\s+(\d{{1,2}})(?:\s+{words.minute_words})?\b", t
    )
    if m:  # "в 10 часов 30 минут"
        return _clock(int(m.group(1)), int(m.group(2)), _meridiem_after(t, m, words), opens)
    m = re.search(rf"\b{words.clock_at}\s+{words.one_oclock}\b", t)
    if m:
        return _clock(1, 0, _meridiem_after(t, m, words), opens)
    return None


def _meridiem_after(t: str, m: re.Match[str], words: Words) -> str | None:
    """ "a" or "p" when a part of the day's word follows the time ("…третьего дня")."""
    after = t[m.end() :].split()
    said = words.meridiem.get(after[0].strip(".,!?")) if after else None
    return said[0] if said else None


def _clock(hour: int, minute: int, meridiem: str | None, opens: time) -> time | None:
    if meridiem == "p" and hour < 12:
        hour += 12
    elif meridiem == "a" and hour == 12:
        hour = 0
    elif meridiem is None and hour < opens.hour and hour + 12 < 24:
        hour += 12
    if not (0 <= hour < 24 and 0 <= minute < 60):
        return None
    return time(hour, minute)


# ---------------------------------------------------------------- calling back


@dataclass(frozen=True)
class Callback:
    """When a caller asked to be called back, and what of it they said (the goodbye repeats
    only that): a day, a time (``after``: "after six", a part of the day: from then on), or an
    amount of time from now."""

    at: datetime  # in the clinic's timezone
    day: date | None = None
    clock: time | None = None
    after: bool = False
    in_minutes: int | None = None


def parse_callback(
    text: str, now: datetime, lex: Lexicon, words: Words, opens: time = time(8, 0)
) -> Callback | None:
    """When to call back, from what the caller said ("tomorrow after six", "in two hours",
    "в понедельник вечером"), relative to ``now`` (aware, in the clinic's timezone); None when
    they named no moment, or one already past.

    A bare hour before ``opens`` is in the afternoon ("after six" is 18:00), and so is one said
    for today whose morning hour has passed ("after eight" at nine in the morning). A part of
    the day is its start ("tomorrow evening": from 17:00), never before ``opens``; a day alone
    is ``opens`` that day, and today alone is no moment at all ("later today").
    """
    t = lex.pattern(lex.greetings).sub(" ", text.lower()) if lex.greetings else text.lower()
    zone = now.tzinfo
    today = now.date()
    units = "|".join(
        re.escape(u) for u in sorted(words.time_units, key=len, reverse=True)
    )  # "half an hour" before "hour"
    if units:
        m = re.search(rf"\b{words.later_by}\s+(?:(\d{{1,3}}|{words.one_of})\s+)?({units})(?!\w)", t)
        if m:
            count = int(m.group(1)) if m.group(1) and m.group(1).isdigit() else 1
            minutes = count * words.time_units[m.group(2)]
            if 0 < minutes <= 7 * 24 * 60:
                return Callback(at=now + timedelta(minutes=minutes), in_minutes=minutes)
    day = parse_date(t, today, words)
    part = next(
        (hours for word, hours in words.day_parts.items() if re.search(rf"\b{word}", t)), None
    )
    explicit = part is not None or bool(
        re.search(r"\d\s*[ap]\.?\s?m\b|\b(?:1[2-9]|2[0-3])[:.]\d{2}\b", t)
    )
    clock: time | None
    m = re.search(
        rf"\b{words.after_time}\s+(\d{{1,2}})(?:[:.](\d{{2}}))?(?:\s*([ap])\.?\s?m\b)?", t
    )
    if m:
        clock, after = _clock(int(m.group(1)), int(m.group(2) or 0), m.group(3), opens), True
    else:
        clock, after = parse_time(t, words, (), opens), False
    if clock is not None and part is not None and clock.hour < 12 <= part[0]:
        clock = time(clock.hour + 12, clock.minute)  # "at 8 in the evening"
    if clock is None and part is not None:
        clock, after = time(max(part[0], opens.hour)), True
    if clock is None:
        if day is None or day <= today:
            return None
        return Callback(at=datetime.combine(day, opens, tzinfo=zone), day=day)
    if day is None:
        day = today
        if not explicit and clock.hour < 12 and datetime.combine(day, clock, tzinfo=zone) <= now:
            clock = time(clock.hour + 12, clock.minute)
        if datetime.combine(day, clock, tzinfo=zone) <= now:
            day = today + timedelta(days=1)
    at = datetime.combine(day, clock, tzinfo=zone)
    if at <= now:
        return None
    return Callback(at=at, day=day, clock=clock, after=after)


# ---------------------------------------------------------------- symptoms


def parse_duration(text: str, words: Words) -> str | None:
    """How long something has lasted, in a short written form ("2 weeks", "since yesterday")."""
    t = text.lower()
    if words.duration_halves:
        m = re.search(rf"\b{alternation(longest_first(words.duration_halves))}\b", t)
        if m:  # "half a year", "полгода"
            return words.duration_halves[m.group(0)]
    m = re.search(rf"\b({words.unit_then_number})\s+(\d{{1,2}})\b", t)
    if m:  # "недели три": about three weeks
        unit = _duration_unit(m.group(1), words)
        if unit:
            return f"{m.group(2)} {unit}{'s' if int(m.group(2)) != 1 else ''}"
    counts = alternation(longest_first(words.vague_counts))
    m = re.search(rf"\b(\d{{1,3}}|{words.one_of}|{counts})\s+({_unit_words(words)})\b", t)
    if m:  # "2 weeks", "a month", "a couple of days", "3 недели"
        count, said = m.group(1), m.group(2)
        unit = _duration_unit(said, words) or said
        if count.isdigit():
            return f"{count} {unit}{'s' if int(count) != 1 else ''}"
        if count in words.vague_counts:
            return f"{words.vague_counts[count]} {unit}s"
        return f"1 {unit}"
    m = re.search(
        rf"\b{words.since} ({words.past_moments}|(?:the |this )?(?:{words.moment_words}"
        rf"|{_weekdays(words)})|{words.last} \w+)\b",
        t,
    )
    if m:  # "since Monday", "since last week"
        return f"since {m.group(1)}"
    m = re.search(
        rf"\b{words.since} the {words.start_of} of (?:the |this |{words.last} )?"
        rf"({_unit_words(words)})\b",
        t,
    )
    if m:  # "since the beginning of the month"
        unit = _duration_unit(m.group(1), words)
        if unit in ("week", "month", "year"):
            return f"since the start of the {unit}"
    m = re.search(rf"\b({words.past_moments})\b", t)
    if m:  # "yesterday", "вчера": since then
        return f"since {m.group(1)}"
    m = re.fullmatch(rf"\W*(?:{words.complaint_lead}\s+){{0,2}}({words.rough_durations})\W*", t)
    if m:  # "Weeks.": how long, roughly
        return m.group(1)
    for m in re.finditer(rf"(?<![\w-])({words.single_units})\b", t):
        if re.search(rf"(?:\b{words.later_by}|\d) $", t[: m.start()]):
            continue  # "через неделю" is a day, "3 года" an age or an amount
        # "Неделю.", "болит уже год": one of them
        return f"1 {_duration_unit(m.group(1), words) or m.group(1)}"
    return None


def _unit_words(words: Words) -> str:
    """The words of a duration's unit, whole ("weeks", "недели") or by their start ("недел…")."""
    return alternation(
        longest_first([*words.duration_units, *(f"{stem}*" for stem in words.duration_stems)])
    )


def _duration_unit(said: str, words: Words) -> str | None:
    """The outcome's unit ("week") for a unit's word as said ("недели", "неделями")."""
    if said in words.duration_units:
        return words.duration_units[said]
    stem = next((s for s in longest_first(words.duration_stems) if said.startswith(s)), None)
    return words.duration_stems[stem] if stem else None


def _weekdays(words: Words) -> str:
    return alternation(longest_first(words.weekdays))


def mentions_symptom(text: str, body_words: Iterable[str], words: Words) -> bool:
    body = list(body_words)
    return bool(words.symptoms.search(text)) or bool(body and phrase_pattern(body).search(text))


def symptom_phrase(text: str, words: Words) -> str:
    """The caller's own words for the problem, without fillers or how long it has lasted."""
    counts = alternation(longest_first(words.vague_counts))
    s = re.sub(
        rf"\b(?:{words.complaint_lead}\s+){{0,2}}(?:\d{{1,3}}|{words.one_of}|{counts})\s+"
        rf"{words.complaint_units}\b"
        rf"|\b{words.since}\s+(?:{words.past_moments}|{words.last} \w+)\b",
        "",
        text,
        flags=re.I,
    )
    s = re.sub(rf"^{words.complaint_openers}[,.]?\s+", "", s.strip(), flags=re.I)
    s = re.sub(r"\s+([.,;!?])", r"\1", s)  # "hurt . It" once "for 2 weeks" is gone
    s = re.sub(r"([.,;!?])(?:\s*[.,;!?])+", r"\1", s)
    s = re.sub(r"\s+", " ", s).strip(" .,!?;")
    return s[:200]


def parse_pain(text: str, lex: Lexicon) -> str | None:
    m = lex.find(lex.pain, text)
    return m.group(0).lower() if m else None


# ---------------------------------------------------------------- names


def _clean_name(raw: str, not_names: frozenset[str]) -> str | None:
    kept = [w for w in raw.split() if w.lower().strip(".,!?") not in not_names]
    name = " ".join(w.strip(".,!?") for w in kept)
    return name or None


def parse_spelled(text: str) -> str | None:
    """A spelled-out name: "J-O-N", "J O N" -> "Jon"."""
    m = re.search(r"\b([A-Za-z](?:[\s.-]+[A-Za-z]\b){2,})", text)
    if not m:
        return None
    letters = re.sub(r"[\s.-]+", "", m.group(1))
    return letters.capitalize()


def parse_spelled_name(text: str, words: Words) -> str | None:
    """A name spelled letter by letter, its words apart by a comma or a pause word:
    "J-O-H-N, S-M-I-T-H" or "J O H N space S M I T H" -> "John Smith"."""
    names = []
    for part in re.split(rf"[,;]|\s{words.spelling_breaks}\s", text, flags=re.I):
        run: list[str] = []
        for token in [*re.split(r"[\s.-]+", part), ""]:
            if len(token) == 1 and token.isalpha():
                run.append(token)
                continue
            if len(run) >= 2:
                names.append("".join(run).capitalize())
            run = []
    return " ".join(names) or None


def parse_name(text: str, words: Words, *, expecting: bool) -> str | None:
    """The caller's name when they say it with a cue ("my name is…", "it's…"), or, when the
    agent just asked for it, an utterance that is nothing but a name (or starts with one).
    A name said again in full ("It's Helen, Helen Carter", "Carter here. Mark Carter") is
    taken in full."""
    name = _name_in(text, words, expecting=expecting)
    return _in_full(name, text, words.not_names) if name else None


def _in_full(name: str, text: str, not_names: frozenset[str]) -> str:
    if " " in name:
        return name
    for pattern in (
        rf"\b{re.escape(name)}\s+({_NAME_TOKEN})",
        rf"({_NAME_TOKEN})\s+{re.escape(name)}\b",
    ):
        for m in re.finditer(pattern, text):
            other = m.group(1)
            if other.lower() not in not_names and other != name:
                return f"{name} {other}" if pattern.startswith(r"\b") else f"{other} {name}"
    return name


def _name_in(text: str, words: Words, *, expecting: bool) -> str | None:
    not_names = words.not_names
    for cue in words.name_cues:
        m = re.search(rf"(?i:{cue}){_NAME}", text)
        if m and _clean_name(m.group(1), not_names):
            return _clean_name(m.group(1), not_names)
    m = re.search(rf"(?:^|[.,!?]\s*){_NAME}\s+{words.after_name}\b", text)
    if m and _clean_name(m.group(1), not_names):
        return _clean_name(m.group(1), not_names)
    if not expecting:
        return None
    stripped = re.sub(rf"^(?:{words.before_name}[,.!]?\s+)+", "", text.strip(), flags=re.I).strip(
        " .!,"
    )
    tokens = stripped.split()
    if len(tokens) <= 5:
        # Said in lower case ("my name is jon"): only in a short answer to the question.
        for cue in words.name_cues:
            m = re.search(
                rf"{cue}([a-zа-яё]+)\b((?:\s+{_RU_PATRONYMIC_OR_SURNAME}){{0,2}})", text, re.I
            )
            if m and m.group(1).lower() not in not_names:
                return " ".join(w.capitalize() for w in (m.group(1) + m.group(2)).split())
        spelled = parse_spelled(text)
        if spelled:
            return spelled
    if 1 <= len(tokens) <= 3 and all(re.fullmatch(_NAME_TOKEN, w) for w in tokens):
        return _clean_name(stripped, not_names)
    # "Anna Kowalski, and my number is…": a name first, then something else.
    m = re.match(rf"{_NAME}\s*[,;]", stripped)
    if m:
        return _clean_name(m.group(1), not_names)
    return None


# ---------------------------------------------------------------- intents and questions


def detect_intents(text: str, lex: Lexicon) -> set[str]:
    return {name for name, phrases in lex.intents.items() if lex.find(phrases, text)}


def is_question(text: str, lex: Lexicon) -> bool:
    stripped = text.strip()
    if stripped.endswith("?"):
        return True
    first = re.split(r"[.,!]\s*", stripped.lower())[0] if stripped else ""
    for opener in lex.question_openers:  # "and what…", "so how much…"
        first = first.removeprefix(f"{opener} ")
    return bool(first) and bool(lex.pattern(lex.question_words).match(first))
