"""A local CSV file with the sheet's columns: the default sink when no Google credentials exist."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
from pathlib import Path

from callkit.errors import ConfigError, DependencyUnavailable

# A spreadsheet opening the file runs a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A phone number or a plain number is data, not a formula: it stays as it is, readable.
_PLAIN_VALUE = re.compile(r"[+-]?[\d ()./-]*\d[\d ()./-]*")


def safe_cell(value: str) -> str:
    """``value`` as a cell no spreadsheet executes: a leading quote marks formula-like text.

    Names and symptoms come from speech recognition, so "=HYPERLINK(...)" or "@SUM(...)" can
    reach a cell; "+7 916 123-45-67" and "-5" are kept as they are.
    """
    if value.startswith(_FORMULA_START) and not _PLAIN_VALUE.fullmatch(value):
        return "'" + value
    return value


class CsvSink:
    name = "csv"

    def __init__(self, path: Path) -> None:
        self.path = path

    async def ensure_header(self, header: list[str]) -> None:
        await asyncio.to_thread(self._ensure_header, header)

    def _ensure_header(self, header: list[str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and self.path.stat().st_size > 0:
            with self.path.open(newline="", encoding="utf-8") as f:
                existing = next(csv.reader(f), [])
            if existing != header:
                raise ConfigError(
                    f"{self.path} already has a different header ({len(existing)} columns); "
                    "it is never rewritten: point NOTIFY_CSV_PATH at a new file or restore the layout"
                )
            return
        self._write([header])

    async def call_ids(self, column: int) -> set[str]:
        return await asyncio.to_thread(self._call_ids, column)

    def _call_ids(self, column: int) -> set[str]:
        if not self.path.exists():
            return set()
        with self.path.open(newline="", encoding="utf-8") as f:
            rows = csv.reader(f)
            next(rows, None)
            return {row[column] for row in rows if len(row) > column}

    async def append(self, rows: list[list[str]]) -> None:
        try:
            await asyncio.to_thread(self._write, rows)
        except OSError as exc:  # disk full, path gone, permissions: the file may come back
            raise DependencyUnavailable(
                f"cannot append to {self.path}: {exc.strerror or exc}"
            ) from exc

    def _write(self, rows: list[list[str]]) -> None:
        # One write of the whole batch, then fsync: a crash leaves whole rows or none of the batch.
        buffer = io.StringIO()
        csv.writer(buffer).writerows([[safe_cell(cell) for cell in row] for row in rows])
        with self.path.open("a", newline="", encoding="utf-8") as f:
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())

    async def check(self) -> None:
        directory = self.path.parent
        if not os.access(directory if directory.exists() else directory.parent, os.W_OK):
            raise DependencyUnavailable(f"cannot write to {directory}")
