"""Contact-list import: numbers to E.164, each contact's zone, encodings and delimiters of real
exports, errors by file line, one contact per number, and a large file read in bounded memory."""

from __future__ import annotations

import codecs
import tracemalloc
from collections.abc import Iterator

import pytest

from callkit.errors import InvalidInput
from dialer.importer import (
    ImportStats,
    normalize_number,
    number_timezone,
    read_csv,
    read_json,
)
from dialer.spec import ContactRow, RowError


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def read(
    data: bytes,
    *,
    region: str = "US",
    default_timezone: str = "UTC",
    chunk: int = 7,
    stats: ImportStats | None = None,
    max_rows: int = 200_000,
) -> tuple[list[ContactRow], list[RowError]]:
    contacts: list[ContactRow] = []
    errors: list[RowError] = []
    rows = read_csv(
        chunked(data, chunk),
        region=region,
        default_timezone=default_timezone,
        stats=stats,
        max_rows=max_rows,
    )
    for row in rows:
        (contacts if isinstance(row, ContactRow) else errors).append(row)  # type: ignore[arg-type]
    return contacts, errors


# --- numbers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("+1 (212) 555-0142", "US", "+12125550142"),
        ("212-555-0142", "US", "+12125550142"),
        ("  (212) 555 0142 ", "us", "+12125550142"),
        ("916 123 45 67", "RU", "+79161234567"),
        ("8 (495) 123-45-67", "RU", "+74951234567"),
        ("+7 495 123 45 67", "US", "+74951234567"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("07400 123456", "GB", "+447400123456"),
        ("+44 7400 123456", "RU", "+447400123456"),
    ],
)
def test_a_number_is_written_in_e164_read_in_its_region(raw: str, region: str, e164: str) -> None:
    assert normalize_number(raw, region) == e164


@pytest.mark.parametrize(
    ("raw", "region", "reason"),
    [
        ("123 456 7890", "US", "not a valid number for US"),
        ("916 123 45 67", "US", "not a valid number for US"),
        ("+44 7700 900123", "US", "not a valid number for country code +44"),
        ("call me", "US", "not a phone number"),
        ("+999 123 4567", "US", "unknown country code"),
        ("12", "US", "too short"),
        ("1234567890123456789", "US", "too long"),
        ("   ", "US", "no phone number"),
        ("212-555-0142 ext. 12", "US", "extension"),
    ],
)
def test_what_is_not_a_dialable_number_is_refused_with_the_reason(
    raw: str, region: str, reason: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        normalize_number(raw, region)
    assert reason in raised.value.message
    digits = "".join(c for c in raw if c.isdigit())
    if len(digits) > 3:
        assert digits not in raised.value.message


def test_an_unknown_region_is_refused() -> None:
    with pytest.raises(InvalidInput, match="region"):
        normalize_number("212-555-0142", "XX")


@pytest.mark.parametrize(
    ("e164", "zone"),
    [
        ("+74951234567", "Europe/Moscow"),
        ("+12125550142", "America/New_York"),
        ("+13105550100", "America/Los_Angeles"),
        ("+442079460958", "Europe/London"),
        # A British mobile maps to London, Jersey, Guernsey and Man: one clock, London's name.
        ("+447400123456", "Europe/London"),
        # A Russian mobile may be anywhere from Kaliningrad to Kamchatka.
        ("+79161234567", None),
        ("+18005550199", None),
    ],
)
def test_a_number_gets_its_zone_only_when_it_has_one_clock(e164: str, zone: str | None) -> None:
    assert number_timezone(e164) == zone


def test_number_timezone_wants_e164() -> None:
    with pytest.raises(InvalidInput, match=r"E\.164"):
        number_timezone("not a number")


# --- CSV: encodings and delimiters --------------------------------------------------------------


def test_a_utf8_file_gives_its_contacts_with_their_columns() -> None:
    data = (
        b"Phone,Name,TimeZone,Consent, Plan ,\n"
        b"+1 212 555 0142,Ann Lee,America/Chicago,web-2024-07,gold,\n"
        b"(310) 555-0100,  Bob Ray  ,,,,\n"
    )
    stats = ImportStats()
    contacts, errors = read(data, stats=stats)
    assert errors == []
    assert contacts == [
        ContactRow(
            row=2,
            phone="+12125550142",
            name="Ann Lee",
            timezone="America/Chicago",
            consent="web-2024-07",
            fields={"plan": "gold"},
        ),
        ContactRow(row=3, phone="+13105550100", name="Bob Ray", timezone="America/Los_Angeles"),
    ]
    assert (stats.rows, stats.contacts, stats.errors, stats.delimiter) == (2, 2, 0, ",")
    assert stats.encoding == "ascii"


def test_a_utf8_file_with_a_byte_order_mark_still_finds_its_phone_column() -> None:
    data = "phone;name\n+7 495 123-45-67;Пётр Ильич\n".encode("utf-8-sig")
    stats = ImportStats()
    contacts, errors = read(data, region="RU", chunk=1, stats=stats)
    assert errors == []
    assert [(c.phone, c.name) for c in contacts] == [("+74951234567", "Пётр Ильич")]
    assert stats.encoding == "utf-8-sig"


def test_a_russian_excel_export_in_windows_1251_with_semicolons() -> None:
    data = (
        "Телефон;Имя;Город;Комментарий\r\n"
        "8 (495) 123-45-67;Иван Петров;Москва;перезвонить после обеда\r\n"
        "+7 916 123 45 67;Мария Сидорова;Тверь;\r\n"
    ).encode("cp1251")
    stats = ImportStats()
    contacts, errors = read(data, region="RU", default_timezone="Europe/Moscow", stats=stats)
    assert errors == []
    assert [(c.row, c.phone, c.name, c.fields) for c in contacts] == [
        (
            2,
            "+74951234567",
            "Иван Петров",
            {"город": "Москва", "комментарий": "перезвонить после обеда"},
        ),
        (3, "+79161234567", "Мария Сидорова", {"город": "Тверь"}),
    ]
    assert (stats.encoding, stats.delimiter) == ("cp1251", ";")


def test_windows_1251_is_recognised_when_the_first_cyrillic_comes_after_the_first_chunk() -> None:
    latin = "".join(f"+1 212 555 {i:04d};Smith {i}\n" for i in range(100, 400))
    data = ("phone;name\n" + latin + "+7 495 123 45 67;Ольга\n").encode("cp1251")
    contacts, errors = read(data, chunk=4096)
    assert errors == []
    assert len(contacts) == 301
    assert contacts[-1].name == "Ольга"
    assert contacts[-1].row == 302


def test_a_western_windows_export_keeps_its_accents() -> None:
    data = "phone,name\n+1 212 555 0142,José Müller\n+1 310 555 0100,François Lefèvre\n".encode(
        "cp1252"
    )
    stats = ImportStats()
    contacts, _ = read(data, stats=stats)
    assert [c.name for c in contacts] == ["José Müller", "François Lefèvre"]
    assert stats.encoding == "cp1252"


@pytest.mark.parametrize(
    ("mark", "encoding", "found"),
    [
        (b"", "utf-16", "utf-16"),  # Python writes the machine's order with its mark
        (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16"),
        (b"", "utf-16-le", "utf-16-le"),
    ],
)
def test_a_utf16_file(mark: bytes, encoding: str, found: str) -> None:
    data = mark + "phone\tname\r\n+1 212 555 0142\tЗоя\r\n".encode(encoding)
    stats = ImportStats()
    contacts, errors = read(data, chunk=3, stats=stats)
    assert errors == []
    assert [(c.phone, c.name) for c in contacts] == [("+12125550142", "Зоя")]
    assert (stats.encoding, stats.delimiter) == (found, "\t")


def test_utf8_that_breaks_off_into_other_bytes_is_refused() -> None:
    data = "phone,name\n+1 212 555 0142,Zoë\n".encode() + "+1 310 555 0100,Zoë\n".encode("cp1252")
    with pytest.raises(InvalidInput, match="not valid utf-8"):
        read(data)


# --- CSV: rows ----------------------------------------------------------------------------------


def test_bad_numbers_are_reported_by_file_line_and_the_other_rows_come_through() -> None:
    data = (
        b"phone,name,note\n"
        b"+1 212 555 0142,Ann,\n"
        b"\n"
        b'123 456 7890,Bob,"two\nlines"\n'
        b"not a number,Cy,\n"
        b"+1 310 555 0100,Di,\n"
    )
    contacts, errors = read(data)
    assert [(c.row, c.name) for c in contacts] == [(2, "Ann"), (7, "Di")]
    assert errors == [
        RowError(row=4, error="phone: not a valid number for US", value="123 456 7890"),
        RowError(row=6, error="phone: not a phone number", value="not a number"),
    ]


def test_two_spellings_of_one_number_give_one_contact_and_are_counted() -> None:
    data = (
        b"phone,name,plan\n"
        b"+1 (212) 555-0142,Ann,gold\n"
        b"+1 310 555 0100,Bob,\n"
        b"212-555-0142,Annie,silver\n"
    )
    stats = ImportStats()
    contacts, errors = read(data, stats=stats)
    assert errors == []
    assert [(c.row, c.phone, c.name, c.fields) for c in contacts] == [
        (2, "+12125550142", "Ann", {"plan": "gold"}),
        (3, "+13105550100", "Bob", {}),
    ]
    assert (stats.rows, stats.contacts, stats.duplicates) == (3, 2, 1)


def test_a_file_without_a_phone_column_is_refused_naming_its_columns() -> None:
    data = b"Name,E-mail,City\nAnn,ann@example.org,NYC\n"
    with pytest.raises(InvalidInput) as raised:
        read(data)
    assert "no phone column" in raised.value.message
    assert "'name', 'e-mail', 'city'" in raised.value.message


def test_a_file_without_a_header_is_refused_without_echoing_its_first_row() -> None:
    with pytest.raises(InvalidInput) as raised:
        read(b"+1 212 555 0142,Ann Lee\n")
    assert "header row" in raised.value.message
    assert "555" not in raised.value.message
    assert "Ann" not in raised.value.message


@pytest.mark.parametrize("data", [b"", b"\r\n\n  \n", b"\xef\xbb\xbf"])
def test_an_empty_file_is_refused(data: bytes) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        read(data)


def test_the_phone_column_may_be_called_number_or_telefon_and_phone_wins_over_number() -> None:
    contacts, _ = read("ТЕЛЕФОН,имя\n+7 495 123 45 67,Ия\n".encode())
    assert [(c.phone, c.name) for c in contacts] == [("+74951234567", "Ия")]
    contacts, _ = read(b"Number\n212 555 0142\n")
    assert [c.phone for c in contacts] == ["+12125550142"]
    contacts, _ = read(b"number,phone\nA-17,212 555 0142\n")
    assert [(c.phone, c.fields) for c in contacts] == [("+12125550142", {"number": "A-17"})]


def test_a_column_named_twice_is_refused() -> None:
    with pytest.raises(InvalidInput, match="'plan' appears twice"):
        read(b"phone,plan,Plan\n212 555 0142,a,b\n")


def test_a_zone_from_the_file_wins_and_an_unknown_zone_is_a_row_error() -> None:
    data = (
        b"phone,timezone\n"
        b"+7 495 123 45 67,Asia/Yekaterinburg\n"
        b"+7 916 123 45 67,\n"
        b"+7 916 765 43 21,europe/samara\n"
        b"+7 916 111 22 33,Moscow Time\n"
        b"+7 916 222 33 44,../../etc/passwd\n"
        b"+7 495 765 43 21,\n"
    )
    contacts, errors = read(data, region="RU", default_timezone="Europe/Kaliningrad")
    assert [(c.row, c.timezone) for c in contacts] == [
        (2, "Asia/Yekaterinburg"),
        (3, "Europe/Kaliningrad"),  # a mobile with no single zone: the campaign's
        (4, "Europe/Samara"),
        (7, "Europe/Moscow"),  # from the number
    ]
    assert [(e.row, e.value) for e in errors] == [(5, "Moscow Time"), (6, "../../etc/passwd")]
    assert all(e.error.startswith("timezone:") for e in errors)


def test_a_row_with_more_cells_than_the_header_is_an_error_but_empty_trailing_cells_are_not() -> (
    None
):
    data = b"phone;name\n212 555 0142;Ann;;\n310 555 0100;Bob;extra\n"
    contacts, errors = read(data)
    assert [c.name for c in contacts] == ["Ann"]
    assert errors == [
        RowError(row=3, error="3 cells, but the header names 2 columns", value="extra")
    ]


def test_values_longer_than_500_characters_and_more_than_50_extra_fields_are_row_errors() -> None:
    names = [f"f{i}" for i in range(51)]
    header = "phone,name," + ",".join(names)
    data = "\n".join(
        [
            header,
            "212 555 0142,Ann," + ",".join(["x"] * 50) + ",",
            "310 555 0100,Bob," + ",".join(["x"] * 51),
            "415 555 0100," + "N" * 501 + ",",
            "646 555 0100,Di," + "y" * 500,
        ]
    ).encode()
    contacts, errors = read(data, chunk=64)
    assert [(c.row, c.name, len(c.fields)) for c in contacts] == [(2, "Ann", 50), (5, "Di", 1)]
    assert contacts[1].fields == {"f0": "y" * 500}
    assert [(e.row, e.error) for e in errors] == [
        (3, "51 extra columns have values; at most 50 are kept per contact"),
        (4, "'name' is longer than 500 characters"),
    ]
    assert errors[1].value is not None
    assert len(errors[1].value) <= 100


def test_more_rows_than_allowed_is_refused() -> None:
    data = b"phone\n" + b"".join(f"212 555 {i:04d}\n".encode() for i in range(100, 111))
    assert len(read(data, max_rows=11)[0]) == 11
    with pytest.raises(InvalidInput, match="more than 10 contacts"):
        read(data, max_rows=10)


def test_a_wrong_region_or_default_zone_is_refused_before_any_byte_is_read() -> None:
    def never() -> Iterator[bytes]:
        raise AssertionError("read")
        yield b""

    with pytest.raises(InvalidInput, match="region"):
        read_csv(never(), region="ZZ", default_timezone="UTC")
    with pytest.raises(InvalidInput, match="IANA"):
        read_csv(never(), region="US", default_timezone="Mars/Olympus")


# --- JSON ---------------------------------------------------------------------------------------


def test_a_json_list_gives_contacts_by_position_with_the_same_rules() -> None:
    items = [
        {"phone": "+1 212 555 0142", "name": "Ann", "consent": "c-1", "Plan": "gold", "age": 41},
        {"phone": 79161234567, "Имя": "Иван", "timezone": "Asia/Omsk", "vip": True},
        "+1 310 555 0100",
        {"phone": "123 456 7890"},
        {"phone": "+1 212-555-0142", "name": "Ann again"},
        {"phone": "310 555 0100", "tags": ["a", "b"]},
        {"name": "no number"},
    ]
    stats = ImportStats()
    rows = list(
        read_json(items, region="RU", default_timezone="UTC", stats=stats)  # type: ignore[arg-type]
    )
    contacts = [r for r in rows if isinstance(r, ContactRow)]
    errors = [r for r in rows if isinstance(r, RowError)]
    assert [(c.row, c.phone, c.name, c.timezone, c.consent, c.fields) for c in contacts] == [
        (1, "+12125550142", "Ann", "America/New_York", "c-1", {"plan": "gold", "age": "41"}),
        (2, "+79161234567", "Иван", "Asia/Omsk", None, {"vip": "true"}),
    ]
    assert [(e.row, e.error) for e in errors] == [
        (3, "not an object"),
        (4, "phone: not a valid number for RU"),
        (6, "'tags' must be text or a number"),
        (7, "no phone number"),
    ]
    assert stats.duplicates == 1


# --- a large file -------------------------------------------------------------------------------


ROWS = 20_000
# Long enough that a copy of the whole file, raw or decoded, would not fit the memory bound.
NOTE = "звонить после 10:00, спросить о продлении договора и о новом тарифе, " * 6


def generated_csv(chunk_rows: int = 1000) -> Iterator[bytes]:
    """A Russian-Excel-style export of ROWS contacts, made as it is read: every 1000th row
    repeats an earlier number in another spelling and every 1000th (offset by 500) has a number
    that does not exist."""
    yield "Телефон;Имя;Тариф;Комментарий\r\n".encode("cp1251")
    for first in range(0, ROWS, chunk_rows):
        lines = []
        for i in range(first, min(first + chunk_rows, ROWS)):
            if i % 1000 == 999:
                phone = f"1-212-{200 + (i - 1) // 10000}-{(i - 1) % 10000:04d}"
            elif i % 1000 == 500:
                phone = "123 456 7890"
            else:
                phone = f"+1 (212) {200 + i // 10000}-{i % 10000:04d}"
            lines.append(f"{phone};Абонент №{i};тариф {i % 7};{NOTE}\r\n")
        yield "".join(lines).encode("cp1251")


def test_twenty_thousand_rows_stream_through_in_bounded_memory() -> None:
    stats = ImportStats()
    last: ContactRow | None = None
    error_rows: list[int] = []
    tracemalloc.start()
    try:
        for row in read_csv(generated_csv(), region="US", default_timezone="UTC", stats=stats):
            if isinstance(row, ContactRow):
                last = row
            else:
                error_rows.append(row.row)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (stats.rows, stats.duplicates, stats.errors) == (ROWS, ROWS // 1000, ROWS // 1000)
    assert stats.contacts == ROWS - 2 * (ROWS // 1000)
    assert error_rows[:2] == [502, 1502]  # file lines: the header is line 1
    assert last is not None
    assert last.row == ROWS
    assert last.name == f"Абонент №{ROWS - 2}"
    assert last.timezone == "America/New_York"
    assert stats.encoding == "cp1251"
    size = sum(len(chunk) for chunk in generated_csv())
    # The peak (6.5 MiB here: the numbers seen and a chunk's rows) stays under the size of the
    # raw file (8.7 MiB), which a copy of the file, raw or decoded, would not.
    assert peak < size, f"peak {peak / 2**20:.1f} MiB against a {size / 2**20:.1f} MiB file"
