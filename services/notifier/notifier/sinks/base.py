"""The sink interface: an append-only table with a header row and a call-id column."""

from __future__ import annotations

from typing import Protocol


class Sink(Protocol):
    name: str

    async def ensure_header(self, header: list[str]) -> None:
        """Write the header if the table is empty; never rewrite an existing one."""
        ...

    async def call_ids(self, column: int) -> set[str]:
        """Every call id already written (the authority on what is done, whatever Redis says)."""
        ...

    async def append(self, rows: list[list[str]]) -> None:
        """Append rows in order, all or nothing as far as the backend allows."""
        ...

    async def check(self) -> None:
        """Raise DependencyUnavailable when the backend cannot be written to."""
        ...
