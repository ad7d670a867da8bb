"""English text normalization for speech: what a receptionist would say aloud.

Phone numbers are read digit by digit in their groups; prices with their currency; times on a
12-hour clock; dates as "November twenty-third, twenty twenty-six"; ordinals, percentages, units,
decimals and medical acronyms ("MRI" → "M R I"). Each rule is one regex and one function, applied
in an order where the more specific patterns (phone numbers, prices, times, dates) run before the
generic number rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tts_gateway.text.numbers_en import cardinal, digits, ordinal, year
from tts_gateway.text.spacing import tidy

MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_MONTH_ALIASES = {m[:3].lower(): i + 1 for i, m in enumerate(MONTHS)}
_MONTH_RE = (
    r"(?P<month>Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)

_CURRENCY = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "usd": ("dollar", "dollars", "cent", "cents"),
    "dollar": ("dollar", "dollars", "cent", "cents"),
    "dollars": ("dollar", "dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"),
    "eur": ("euro", "euros", "cent", "cents"),
    "euro": ("euro", "euros", "cent", "cents"),
    "euros": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "gbp": ("pound", "pounds", "penny", "pence"),
    "₽": ("ruble", "rubles", "kopeck", "kopecks"),
    "rub": ("ruble", "rubles", "kopeck", "kopecks"),
    "руб": ("ruble", "rubles", "kopeck", "kopecks"),
    "ruble": ("ruble", "rubles", "kopeck", "kopecks"),
    "rubles": ("ruble", "rubles", "kopeck", "kopecks"),
}
_UNITS = {
    "kg": ("kilogram", "kilograms"),
    "g": ("gram", "grams"),
    "mg": ("milligram", "milligrams"),
    "lb": ("pound", "pounds"),
    "lbs": ("pound", "pounds"),
    "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"),
    "km": ("kilometer", "kilometers"),
    "ml": ("milliliter", "milliliters"),
    "min": ("minute", "minutes"),
    "mins": ("minute", "minutes"),
    "h": ("hour", "hours"),
    "hr": ("hour", "hours"),
    "hrs": ("hour", "hours"),
}
_ABBREVIATIONS = {
    "Dr.": "Doctor",
    "Mr.": "Mister",
    "Mrs.": "Missus",
    "Ms.": "Miz",
    "Prof.": "Professor",
    "St.": "Street",
    "Ave.": "Avenue",
    "Rd.": "Road",
    "Blvd.": "Boulevard",
    "Apt.": "Apartment",
    "approx.": "approximately",
    "e.g.": "for example",
    "i.e.": "that is",
    "etc.": "et cetera",
    "vs.": "versus",
    "Jr.": "Junior",
    "Sr.": "Senior",
    "Mon.": "Monday",
    "Tue.": "Tuesday",
    "Wed.": "Wednesday",
    "Thu.": "Thursday",
    "Fri.": "Friday",
    "Sat.": "Saturday",
    "Sun.": "Sunday",
}
_ACRONYMS = {
    "MRI": "M R I",
    "CT": "C T",
    "ECG": "E C G",
    "EKG": "E K G",
    "ENT": "E N T",
    "ER": "E R",
    "ICU": "I C U",
    "ASAP": "as soon as possible",
    "ID": "I D",
    "SMS": "S M S",
    "PDF": "P D F",
    "OK": "okay",
    "USG": "ultrasound",
    "BMI": "B M I",
    "PET": "P E T",
}
_SYMBOLS = {
    "&": " and ",
    "@": " at ",
    "#": " number ",
    "°C": " degrees Celsius",
    "°F": " degrees Fahrenheit",
}


def _plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


def _number_words(text: str) -> str:
    """ "1,299" -> cardinal; "3.5" -> "three point five"."""
    text = text.replace(",", "").replace(" ", "").replace("\u00a0", "")
    if "." in text:
        whole, frac = text.split(".", 1)
        return f"{cardinal(int(whole or 0))} point {digits(frac)}"
    return cardinal(int(text))


def _phone(m: re.Match[str]) -> str:
    raw = m.group(0)
    groups = [g for g in re.split(r"[^\d]+", raw) if g]
    if len(groups) == 1 and len(groups[0]) == 10:  # 5551234567 -> 555 123 4567
        g = groups[0]
        groups = [g[:3], g[3:6], g[6:]]
    elif len(groups) == 1 and len(groups[0]) == 11 and raw.lstrip().startswith(("+", "1")):
        g = groups[0]
        groups = [g[:1], g[1:4], g[4:7], g[7:]]
    spoken = ", ".join(digits(g) for g in groups)
    return (" plus " if raw.lstrip().startswith("+") else " ") + spoken + ", "


def _money(amount: str, currency: str) -> str:
    names = _CURRENCY[currency.lower().rstrip(".")]
    amount = amount.replace(",", "").replace(" ", "").replace("\u00a0", "")
    whole_s, _, frac_s = amount.partition(".")
    whole = int(whole_s or 0)
    cents = int((frac_s + "00")[:2]) if frac_s else 0
    words = f"{cardinal(whole)} {_plural(whole, names[0], names[1])}"
    if cents:
        words += f" and {cardinal(cents)} {_plural(cents, names[2], names[3])}"
    return f" {words} "


def _price(m: re.Match[str]) -> str:
    frac = m.groupdict().get("frac")
    return _money(m.group("amount") + (f".{frac}" if frac else ""), m.group("cur"))


def _clock(hour: int, minute: int, meridiem: str | None) -> str:
    """Speak a time on a 12-hour clock; a 24-hour time gets its A M / P M."""
    if meridiem is None:
        if (hour, minute) == (0, 0):
            return "midnight"
        if (hour, minute) == (12, 0):
            return "noon"
        if hour >= 13:
            hour, meridiem = hour - 12, "pm"
        elif hour == 0:
            hour, meridiem = 12, "am"
        elif hour == 12:
            meridiem = "pm"
    words = cardinal(hour)
    if minute:
        words += " " + (f"oh {cardinal(minute)}" if minute < 10 else cardinal(minute))
    elif meridiem is None:
        words += " o'clock"
    if meridiem:
        # "AM"/"PM" as capitals: Piper says the letters; "A M" would read "A" as the article.
        words += " PM" if meridiem.startswith("p") else " AM"
    return words


def _time_hm(m: re.Match[str]) -> str:
    hour, minute = int(m.group("h")), int(m.group("m"))
    if hour > 23 or minute > 59:
        return m.group(0)
    mer = m.group("mer")
    return " " + _clock(hour, minute, mer.replace(".", "").lower() if mer else None) + " "


def _time_h(m: re.Match[str]) -> str:
    hour = int(m.group("h"))
    if not 1 <= hour <= 12:
        return m.group(0)
    return " " + _clock(hour, 0, m.group("mer").replace(".", "").lower()) + " "


def _date_iso(m: re.Match[str]) -> str:
    y, mo, d = int(m.group("y")), int(m.group("mo")), int(m.group("d"))
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        return m.group(0)
    return f" {MONTHS[mo - 1]} {ordinal(d)}, {year(y)} "


def _date_us(m: re.Match[str]) -> str:
    mo, d, y = int(m.group("mo")), int(m.group("d")), int(m.group("y"))
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        return m.group(0)
    return f" {MONTHS[mo - 1]} {ordinal(d)}, {year(y)} "


def _month_name(token: str) -> str:
    return MONTHS[_MONTH_ALIASES[token.lower().rstrip(".")[:3]] - 1]


def _month_day(m: re.Match[str]) -> str:
    d = int(m.group("d"))
    if not 1 <= d <= 31:
        return m.group(0)
    return f"{_month_name(m.group('month'))} {ordinal(d)}"


def _day_of_month(m: re.Match[str]) -> str:
    return f"{ordinal(int(m.group('d')))} of {_month_name(m.group('month'))}"


def _unit(m: re.Match[str]) -> str:
    value = m.group("n")
    one, many = _UNITS[m.group("unit").lower()]
    is_one = value in ("1", "1.0")
    return f" {_number_words(value)} {one if is_one else many} "


_RULES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str] | str]] = [
    # Phone numbers: +1 (555) 123-4567, 555-123-4567, 555.123.4567, 5551234567, +7 495 123 45 67
    (re.compile(r"(?<![\w$€£₽.,])\+\d[\d\s().-]{8,}\d(?![\w%])"), _phone),
    (re.compile(r"(?<![\w$€£₽.,])(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?![\w%])"), _phone),
    (re.compile(r"(?<![\w$€£₽.,])\d{10,11}(?![\w%])"), _phone),
    # Prices
    (re.compile(r"(?P<cur>[$€£₽])\s?(?P<amount>\d[\d,]*(?:\.\d{1,2})?)"), _price),
    (
        re.compile(
            r"(?P<amount>\d[\d,\u00a0 ]*?\d|\d)(?:\.(?P<frac>\d{1,2}))?\s?(?P<cur>₽|руб\.?|(?i:usd|eur|gbp|rub|dollars?|euros?|rubles?))(?![\w])"
        ),
        _price,
    ),
    # Dates
    (re.compile(r"\b(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})\b"), _date_iso),
    (re.compile(r"\b(?P<mo>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})\b"), _date_us),
    (
        re.compile(
            r"\b" + _MONTH_RE + r"\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y>(?:19|20)\d{2})\b"
        ),
        lambda m: f"{_month_day(m)}, {year(int(m.group('y')))}",
    ),
    (
        re.compile(r"\b(?P<d>\d{1,2})(?:st|nd|rd|th)?\s+of\s+" + _MONTH_RE + r"(?!\w)"),
        _day_of_month,
    ),
    (re.compile(r"\b" + _MONTH_RE + r"\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?\b"), _month_day),
    # Times
    (
        re.compile(r"\b(?P<h>\d{1,2}):(?P<m>\d{2})(?:\s*(?P<mer>[ap]\.?m\.?|[AP]\.?M\.?)(?!\w))?"),
        _time_hm,
    ),
    (re.compile(r"\b(?P<h>\d{1,2})\s*(?P<mer>[ap]\.?m\.?|[AP]\.?M\.?)(?!\w)"), _time_h),
    # Ordinals, percentages, units
    (re.compile(r"\b(\d+)(?:st|nd|rd|th)\b"), lambda m: ordinal(int(m.group(1)))),
    (re.compile(r"(\d+(?:\.\d+)?)\s?%"), lambda m: f"{_number_words(m.group(1))} percent"),
    (
        re.compile(
            r"\b(?P<n>\d+(?:\.\d+)?)\s?(?P<unit>kg|mg|g|lbs?|cm|mm|km|ml|mins?|hrs?|h)\b", re.I
        ),
        _unit,
    ),
    # Years after "in/since/year/of", then any remaining number
    (
        re.compile(r"\b(?P<pre>in|since|year|of)\s+(?P<y>(?:19|20)\d{2})\b", re.I),
        lambda m: f"{m.group('pre')} {year(int(m.group('y')))}",
    ),
    (
        re.compile(r"\b\d{1,3}(?:,\d{3})+(?:\.\d+)?\b|\b\d+\.\d+\b|\b\d+\b"),
        lambda m: _number_words(m.group(0)),
    ),
]


class EnglishNormalizer:
    language = "en"

    def normalize(self, text: str) -> str:
        text = re.sub(
            r"(?<!\w)St\.(?=\s+[A-Z])(?<!\d\s)", "Saint", text
        )  # "St. Mary's"; "Main St." stays Street
        for abbr, full in _ABBREVIATIONS.items():
            text = re.sub(r"(?<!\w)" + re.escape(abbr), full, text)
        text = re.sub(r"\bNo\.\s?(?=\d)", "number ", text)
        for symbol, words in _SYMBOLS.items():
            text = text.replace(symbol, words)
        for pattern, repl in _RULES:
            text = pattern.sub(repl, text)
        text = re.sub(r"\b[A-Z]{2,5}\b", lambda m: _ACRONYMS.get(m.group(0), m.group(0)), text)
        text = re.sub(r"(?<=\w)/(?=\w)", " or ", text)
        return tidy(text)
