"""The CSV sink's cells: formula-like text from speech recognition never runs in a spreadsheet."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import pytest

from notifier.sinks.csv import CsvSink, safe_cell


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://x","click")', '\'=HYPERLINK("http://x","click")'),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-1+1", "'-1+1"),
        ("\t=1", "'\t=1"),
        ("+7 916 123-45-67", "+7 916 123-45-67"),
        ("+15551234567", "+15551234567"),
        ("+44 (20) 7946 0958", "+44 (20) 7946 0958"),
        ("-5", "-5"),
        ("John Smith", "John Smith"),
        ("sharp pain = 7 of 10", "sharp pain = 7 of 10"),
        ("", ""),
    ],
)
def test_a_cell_that_would_run_as_a_formula_is_quoted_and_numbers_stay_readable(
    value: str, written: str
) -> None:
    assert safe_cell(value) == written


def test_the_file_on_disk_holds_the_quoted_cell(tmp_path: Path) -> None:
    sink = CsvSink(tmp_path / "calls.csv")
    asyncio.run(sink.ensure_header(["call_id", "name", "phone"]))
    asyncio.run(sink.append([["c1", "=1+1", "+79161234567"]]))
    with (tmp_path / "calls.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows == [["call_id", "name", "phone"], ["c1", "'=1+1", "+79161234567"]]
