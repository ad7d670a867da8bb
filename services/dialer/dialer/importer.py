"""Contact lists (CSV uploads and JSON bodies) into contact rows: E.164 numbers, local zones.

Pure: bytes or dicts in, :class:`~dialer.spec.ContactRow` and :class:`~dialer.spec.RowError`
out; the API stores them. A CSV upload is read as a stream of byte chunks and its rows stream
out as they are parsed, so a list of a hundred thousand contacts is never held whole: only the
numbers already seen are kept (as integers), to drop a second row for the same number.

The steps for a CSV file:
1. decide the encoding from its first bytes: a UTF-8 or UTF-16 byte-order mark (or the zero
   bytes of UTF-16 written without one); else UTF-8 when the first non-ASCII bytes are valid
   UTF-8; else a Windows code page, as Excel exports (the Russian one unless charset-normalizer
   finds Western European text likelier);
2. split the text into lines and take the delimiter (``,``, ``;`` or tab) from the header;
3. map the header's columns: a phone column is required, name, timezone and consent are known,
   every other named column is an extra field;
4. turn each row into a contact or a row error; a number seen before is counted, not repeated.

Row numbers are lines of the file (the header is line 1), so a user can find the row in Excel.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import chain
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from charset_normalizer import from_bytes
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberType, ValidationResult
from phonenumbers import timezone as number_zones
from pydantic import ValidationError

from callkit.errors import InvalidInput
from dialer.spec import ContactRow, RowError

#: Header names per role, in order of preference when a file has more than one of them (the
#: others then become extra fields: a "number" next to a "phone" is likely an account number).
PHONE_COLUMNS: Final = ("phone", "телефон", "number")
NAME_COLUMNS: Final = ("name", "имя")
TIMEZONE_COLUMNS: Final = ("timezone",)
CONSENT_COLUMNS: Final = ("consent",)

MAX_VALUE_CHARS: Final = 500
MAX_EXTRA_FIELDS: Final = 50
#: A line this long without a line break is not a contact list (and would otherwise be buffered
#: whole): 54 columns of 500 characters fit many times over.
MAX_LINE_CHARS: Final = 1 << 20
DELIMITERS: Final = (",", ";", "\t")
#: How much of the first non-ASCII chunk charset-normalizer looks at.
_SNIFF_BYTES: Final = 64 * 1024
#: Windows code pages a non-UTF-8 export may be in; the first is assumed when text is ambiguous.
_CODEPAGES: Final = ("cp1251", "cp1252")
_EXCERPT_CHARS: Final = 100

_COUNTRY_ZONES: dict[int, tuple[str, ...]] = {}
_NON_ASCII = re.compile(rb"[\x80-\xff]")
_MANY_DIGITS = re.compile(r"(?:\d\D{0,2}){7}")

_PARSE_ERRORS: Final = {
    NumberParseException.INVALID_COUNTRY_CODE: "not a phone number: unknown country code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short to be a phone number",
    NumberParseException.TOO_SHORT_NSN: "too short to be a phone number",
    NumberParseException.TOO_LONG: "too long to be a phone number",
}


@dataclass
class ImportStats:
    """What an import saw, filled in while its rows are read (pass one to ``read_csv``)."""

    rows: int = 0  # data rows, blank lines not counted
    contacts: int = 0
    errors: int = 0
    duplicates: int = 0  # rows whose number an earlier row already had; they were dropped
    encoding: str | None = None
    delimiter: str | None = None


# --- numbers and zones ------------------------------------------------------------------------


def normalize_number(raw: str, region: str) -> str:
    """The number in E.164 (``+79161234567``); ``region`` (ISO 3166, e.g. ``RU``) is where a
    number written without ``+`` and a country code is from.

    Raises :class:`InvalidInput` saying why the text is not a number that can be dialled; the
    message never repeats the number.
    """
    number, _ = _parse(raw, _region(region))
    return _e164(number)


def number_timezone(e164: str) -> str | None:
    """The IANA zone of a number in E.164, when phonenumbers places it in one zone.

    A number that maps to several zones with the same clock all year (a British mobile:
    London, Jersey, Guernsey, the Isle of Man) gets the one the country's landlines use; a
    number spread over different clocks (a Russian or a US toll-free mobile) gets None.
    """
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        raise InvalidInput("expected a number in E.164 (+ and the country code)") from None
    return _number_zone(number, phonenumbers.number_type(number))


def _region(region: str) -> str:
    code = region.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidInput(f"{region!r} is not a region phonenumbers knows (such as US, GB, RU)")
    return code


def _parse(raw: str, region: str) -> tuple[PhoneNumber, int]:
    """The number and its :class:`PhoneNumberType`, or InvalidInput saying why there is none."""
    text = raw.strip()
    if not text:
        raise InvalidInput("no phone number")
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise InvalidInput(_PARSE_ERRORS.get(exc.error_type, "not a phone number")) from None
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible == ValidationResult.TOO_SHORT:
        raise InvalidInput("too short to be a phone number")
    if possible == ValidationResult.TOO_LONG:
        raise InvalidInput("too long to be a phone number")
    if possible == ValidationResult.INVALID_COUNTRY_CODE:
        raise InvalidInput("not a phone number: unknown country code")
    # is_valid_number is number_type(n) != UNKNOWN on the same metadata; the type is computed
    # once here because the zone lookup needs it too (it is most of an import's time).
    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.UNKNOWN:
        if number.country_code == phonenumbers.country_code_for_region(region):
            raise InvalidInput(f"not a valid number for {region}")
        raise InvalidInput(f"not a valid number for country code +{number.country_code}")
    if number.extension:
        raise InvalidInput("has an extension, which the dialer cannot dial")
    return number, kind


def _e164(number: PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _number_zone(number: PhoneNumber, kind: int) -> str | None:
    """What ``number_zones.time_zones_for_number`` finds, reduced to one zone or None."""
    country_code = number.country_code or 0
    if kind == PhoneNumberType.UNKNOWN:
        return None
    if phonenumbers.is_number_type_geographical(kind, country_code):
        candidates = number_zones.time_zones_for_geographical_number(number)
    else:
        candidates = _country_zones(number)
    return _one_zone(tuple(candidates), country_code)


def _country_zones(number: PhoneNumber) -> tuple[str, ...]:
    # A number of no fixed place (a mobile in most countries) gets its country's zones, cached
    # per country code: that is all this lookup reads of a non-geographical number.
    country_code = number.country_code or 0
    zones = _COUNTRY_ZONES.get(country_code)
    if zones is None:
        zones = _COUNTRY_ZONES[country_code] = tuple(number_zones.time_zones_for_number(number))
    return zones


@lru_cache(maxsize=4096)
def _one_zone(candidates: tuple[str, ...], country_code: int) -> str | None:
    # Keyed on the candidate list, which a whole list of numbers shares a handful of: the
    # comparison of clocks below runs once per list, not once per row.
    zones = [zone for zone in (_zone(name) for name in candidates) if zone is not None]
    if len(zones) <= 1:
        return zones[0] if zones else None  # "Etc/Unknown" is no zone
    if not _same_clock(tuple(zones)):
        return None
    example = phonenumbers.example_number_for_type(
        phonenumbers.region_code_for_country_code(country_code), PhoneNumberType.FIXED_LINE
    )
    if example is not None:
        landline = number_zones.time_zones_for_number(example)
        if len(landline) == 1 and landline[0] in zones:
            return landline[0]
    return zones[0]


def _same_clock(zones: tuple[str, ...]) -> bool:
    """Whether the zones show the same local time at noon UTC on every day of the coming year
    (a difference for a few night hours around a clock change does not matter for calls)."""
    start = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    infos = [ZoneInfo(zone) for zone in zones]
    for day in range(366):
        instant = start + timedelta(days=day)
        first = instant.astimezone(infos[0]).utcoffset()
        if any(instant.astimezone(info).utcoffset() != first for info in infos[1:]):
            return False
    return True


@lru_cache(maxsize=1024)
def _zone(name: str) -> str | None:
    """The IANA zone named (its canonical spelling if written in another case), else None."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return _zones_by_folded_name().get(name.casefold())
    return name


@lru_cache(maxsize=1)
def _zones_by_folded_name() -> dict[str, str]:
    return {zone.casefold(): zone for zone in available_timezones()}


# --- rows -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Columns:
    """Where each role sits in a row, and the extra fields' names by position."""

    names: tuple[str, ...]
    phone: int
    name: int | None
    timezone: int | None
    consent: int | None
    extra: tuple[tuple[int, str], ...]

    def label(self, index: int) -> str:
        named = index < len(self.names) and self.names[index]
        return repr(self.names[index]) if named else f"column {index + 1}"


def _columns(names: Sequence[str]) -> _Columns:
    """Map normalized (stripped, lower-cased) column names; raise InvalidInput when the phone
    column is missing or a name appears twice. Unnamed columns are ignored."""
    position: dict[str, int] = {}
    for index, name in enumerate(names):
        if not name:
            continue
        if name in position:
            raise InvalidInput(f"column {name!r} appears twice")
        position[name] = index

    def first(aliases: tuple[str, ...]) -> int | None:
        return next((position[alias] for alias in aliases if alias in position), None)

    phone = first(PHONE_COLUMNS)
    if phone is None:
        if any(_MANY_DIGITS.search(name) for name in names):
            # Likely a file without a header; its first row is not echoed back.
            raise InvalidInput(
                "the first line holds a phone number: the file needs a header row naming its "
                f"columns, one of them {' or '.join(PHONE_COLUMNS)}"
            )
        found = ", ".join(repr(name[:40]) for name in names if name) or "none"
        raise InvalidInput(
            f"no phone column ({', '.join(PHONE_COLUMNS)}); the columns found are: {found}"
        )
    roles = {
        "phone": phone,
        "name": first(NAME_COLUMNS),
        "timezone": first(TIMEZONE_COLUMNS),
        "consent": first(CONSENT_COLUMNS),
    }
    taken = {index for index in roles.values() if index is not None}
    extra = tuple((index, name) for name, index in position.items() if index not in taken)
    return _Columns(tuple(names), phone, roles["name"], roles["timezone"], roles["consent"], extra)


class _Rows:
    """Turns rows of stripped cell values into contacts or errors, dropping repeated numbers."""

    def __init__(self, region: str, default_timezone: str, max_rows: int, stats: ImportStats):
        self.region = _region(region)
        zone = _zone(default_timezone.strip())
        if zone is None:
            raise InvalidInput(
                f"{default_timezone!r} is not an IANA time zone (such as Europe/Moscow)"
            )
        self.default_timezone = zone
        self.max_rows = max_rows
        self.stats = stats
        self._seen: set[int] = set()

    def map(
        self, line: int, cells: Sequence[str], columns: _Columns
    ) -> ContactRow | RowError | None:
        """One data row; None for a blank row or a repeated number (counted in the stats)."""
        if not any(cells):
            return None
        self.stats.rows += 1
        if self.stats.rows > self.max_rows:
            raise InvalidInput(f"more than {self.max_rows} contacts; split the list")
        result = self._contact(line, cells, columns)
        if isinstance(result, RowError):
            self.stats.errors += 1
        elif result is not None:
            self.stats.contacts += 1
        return result

    def error(self, line: int, message: str, value: str | None = None) -> RowError:
        """A row refused before its cells could be read (counted like any data row)."""
        self.stats.rows += 1
        if self.stats.rows > self.max_rows:
            raise InvalidInput(f"more than {self.max_rows} contacts; split the list")
        self.stats.errors += 1
        return RowError(row=line, error=message, value=value)

    def _contact(
        self, line: int, cells: Sequence[str], columns: _Columns
    ) -> ContactRow | RowError | None:
        def cell(index: int | None) -> str:
            return cells[index] if index is not None and index < len(cells) else ""

        for index, value in enumerate(cells):
            if len(value) > MAX_VALUE_CHARS:
                return RowError(
                    row=line,
                    error=f"{columns.label(index)} is longer than {MAX_VALUE_CHARS} characters",
                    value=_excerpt(value),
                )
        extra = {name: cell(index) for index, name in columns.extra if cell(index)}
        if len(extra) > MAX_EXTRA_FIELDS:
            return RowError(
                row=line,
                error=f"{len(extra)} extra columns have values; at most {MAX_EXTRA_FIELDS} are kept per contact",
            )
        raw_phone = cell(columns.phone)
        try:
            number, kind = _parse(raw_phone, self.region)
        except InvalidInput as exc:
            return RowError(row=line, error=f"phone: {exc.message}", value=_excerpt(raw_phone))
        raw_zone = cell(columns.timezone)
        if raw_zone:
            zone = _zone(raw_zone)
            if zone is None:
                return RowError(
                    row=line,
                    error="timezone: not an IANA time zone (such as Europe/Moscow)",
                    value=_excerpt(raw_zone),
                )
        else:
            zone = _number_zone(number, kind) or self.default_timezone
        e164 = _e164(number)
        try:
            contact = ContactRow(
                row=line,
                phone=e164,
                name=cell(columns.name) or None,
                timezone=zone,
                consent=cell(columns.consent) or None,
                fields=extra,
            )
        except ValidationError:
            return RowError(
                row=line, error="phone: not a number in E.164", value=_excerpt(raw_phone)
            )
        key = int(e164[1:])
        if key in self._seen:
            self.stats.duplicates += 1
            return None
        self._seen.add(key)
        return contact


def _excerpt(value: str) -> str:
    return value if len(value) <= _EXCERPT_CHARS else value[: _EXCERPT_CHARS - 1] + "…"


# --- CSV --------------------------------------------------------------------------------------


def read_csv(
    chunks: Iterable[bytes],
    *,
    region: str,
    default_timezone: str,
    max_rows: int = 200_000,
    stats: ImportStats | None = None,
) -> Iterator[ContactRow | RowError]:
    """The contacts of a CSV file read from ``chunks`` of bytes, in file order, with an error
    for each row that cannot be one; a number already seen is dropped (``stats.duplicates``).

    ``region`` and ``default_timezone`` are checked at once. The file's own problems (empty,
    no phone column, not decodable, more than ``max_rows`` rows) raise :class:`InvalidInput`
    while iterating, possibly after rows have come out: a caller storing rows as they arrive
    stores them in one transaction.
    """
    rows = _Rows(region, default_timezone, max_rows, stats if stats is not None else ImportStats())
    return _csv_rows(chunks, rows)


def _csv_rows(chunks: Iterable[bytes], rows: _Rows) -> Iterator[ContactRow | RowError]:
    decoder = _Decoder()
    lines = _lines(decoder.text(chunks))
    # The delimiter is the header line's; blank lines before the header are kept for the count.
    leading: list[str] = []
    for text_line in lines:
        leading.append(text_line)
        if text_line.strip():
            break
    else:
        raise InvalidInput("the file is empty")
    header_line = leading[-1]
    delimiter = max(DELIMITERS, key=header_line.count)
    rows.stats.delimiter = delimiter
    reader = csv.reader(chain(leading, lines), delimiter=delimiter)

    def records() -> Iterator[tuple[int, list[str]]]:
        while True:
            start = reader.line_num + 1
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise InvalidInput(
                    f"line {reader.line_num}: the CSV cannot be read ({exc})"
                ) from None
            yield start, record

    columns: _Columns | None = None
    width = 0
    for line, record in records():
        cells = [value.strip() for value in record]
        if columns is None:
            if any(cells):
                names = [name.lower() for name in cells]
                columns, width = _columns(names), len(names)
            continue
        if len(cells) > width and any(cells[width:]):
            surplus = next(value for value in cells[width:] if value)
            yield rows.error(
                line,
                f"{len(cells)} cells, but the header names {width} columns",
                _excerpt(surplus),
            )
            continue
        result = rows.map(line, cells, columns)
        if result is not None:
            yield result
    # Decided only by the first non-ASCII byte, which may come late or never.
    rows.stats.encoding = decoder.encoding or "ascii"


def _lines(texts: Iterable[str]) -> Iterator[str]:
    """Lines with their endings (``\\n`` or ``\\r\\n``), as :mod:`csv` wants them."""
    tail: list[str] = []
    tail_chars = 0
    for text in texts:
        if "\n" not in text:
            tail.append(text)
            tail_chars += len(text)
            if tail_chars > MAX_LINE_CHARS:
                raise InvalidInput(f"a line is longer than {MAX_LINE_CHARS} characters")
            continue
        parts = "".join([*tail, text]).split("\n")
        last = parts.pop()
        for part in parts:
            yield part + "\n"
        tail, tail_chars = [last], len(last)
    rest = "".join(tail)
    if rest:
        yield rest


class _Decoder:
    """Bytes to text across chunk boundaries, the encoding decided by the bytes themselves.

    Until a non-ASCII byte arrives, the text is ASCII, the same in every candidate encoding, so
    the decision waits for the first chunk that has one: a file whose first thousand rows are
    Latin and whose later names are Cyrillic is still read in the right code page.
    """

    def __init__(self) -> None:
        self.encoding: str | None = None
        self._decoder: codecs.IncrementalDecoder | None = None
        self._pending = b""
        self._sample: bytearray | None = None  # bytes held back until the code page is chosen
        self._started = False
        self._offset = 0  # bytes decoded before the current chunk, for error messages

    def text(self, chunks: Iterable[bytes]) -> Iterator[str]:
        for chunk in chunks:
            if chunk:
                yield self.feed(chunk)
        yield self.feed(b"", final=True)

    def feed(self, data: bytes, *, final: bool = False) -> str:
        if self._decoder is not None:
            return self._decode(data, final)
        if self._sample is not None:
            # Not UTF-8: which code page is a guess that wants more than a few bytes of text.
            self._sample += data
            if len(self._sample) < _SNIFF_BYTES and not final:
                return ""
            sample, self._sample = bytes(self._sample), None
            return self._commit(_codepage(sample[:_SNIFF_BYTES]), sample, final)
        data, self._pending = self._pending + data, b""
        if not self._started:
            if len(data) < len(codecs.BOM_UTF8) and not final:
                self._pending = data
                return ""
            self._started = True
            if data.startswith(codecs.BOM_UTF8):
                return self._commit("utf-8-sig", data, final)
            if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                return self._commit("utf-16", data, final)
            # UTF-16 without a mark: a header's ASCII letters come with a zero byte each.
            if len(data) >= 2 and data[0] and not data[1]:
                return self._commit("utf-16-le", data, final)
            if len(data) >= 2 and not data[0] and data[1]:
                return self._commit("utf-16-be", data, final)
        found = _NON_ASCII.search(data)
        if found is None:
            self._offset += len(data)
            return data.decode("ascii")
        ascii_part = data[: found.start()].decode("ascii")
        self._offset += found.start()
        rest = data[found.start() :]
        utf8 = codecs.getincrementaldecoder("utf-8")()
        try:
            text = utf8.decode(rest, final)
        except UnicodeDecodeError:
            self._sample = bytearray(rest)
            return ascii_part + self.feed(b"", final=final)
        if not text:
            # Only the start of a multi-byte character so far: decide with the next chunk.
            self._pending = rest
            return ascii_part
        self.encoding, self._decoder = "utf-8", utf8
        self._offset += len(rest)
        return ascii_part + text

    def _commit(self, encoding: str, data: bytes, final: bool) -> str:
        self.encoding = encoding
        # A Windows code page leaves a few bytes undefined; one such stray byte in a name should
        # not refuse the whole list.
        errors = "replace" if encoding in _CODEPAGES else "strict"
        self._decoder = codecs.getincrementaldecoder(encoding)(errors)
        return self._decode(data, final)

    def _decode(self, data: bytes, final: bool) -> str:
        assert self._decoder is not None
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                f"the file is not valid {self.encoding} at byte {self._offset + exc.start}"
            ) from None
        self._offset += len(data)
        return text


def _codepage(sample: bytes) -> str:
    best = from_bytes(sample, cp_isolation=list(_CODEPAGES)).best()
    return best.encoding if best is not None and best.encoding in _CODEPAGES else _CODEPAGES[0]


# --- JSON -------------------------------------------------------------------------------------


def read_json(
    items: list[dict[str, Any]],
    *,
    region: str,
    default_timezone: str,
    max_rows: int = 200_000,
    stats: ImportStats | None = None,
) -> Iterator[ContactRow | RowError]:
    """The contacts of a JSON list (``{"phone", "name", "timezone", "consent", …}``; other keys
    are extra fields), row = position + 1, with the same rules as :func:`read_csv`."""
    rows = _Rows(region, default_timezone, max_rows, stats if stats is not None else ImportStats())
    return _json_rows(items, rows)


def _json_rows(items: list[dict[str, Any]], rows: _Rows) -> Iterator[ContactRow | RowError]:
    # Typed as the API hands it over, but a body is checked here too: any entry may be anything.
    entries: Iterable[object] = items
    for position, item in enumerate(entries):
        line = position + 1
        if not isinstance(item, dict):
            yield rows.error(line, "not an object")
            continue
        names: list[str] = []
        cells: list[str] = []
        bad: str | None = None
        for key, value in item.items():
            text = _json_text(value)
            if text is None:
                bad = str(key)
                break
            names.append(str(key).strip().lower())
            cells.append(text)
        if bad is not None:
            yield rows.error(line, f"{_excerpt(bad)!r} must be text or a number")
            continue
        if not set(names) & set(PHONE_COLUMNS):
            yield rows.error(line, "no phone number")
            continue
        try:
            columns = _columns(names)
        except InvalidInput as exc:
            yield rows.error(line, exc.message)
            continue
        result = rows.map(line, cells, columns)
        if result is not None:
            yield result


def _json_text(value: Any) -> str | None:
    """A JSON value as a cell's text; None for a list or an object, which no cell holds."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return None
