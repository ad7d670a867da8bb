"""Google Sheets sink on gspread-asyncio with a service-account credentials file.

Rows are appended with the Sheets v4 ``values.append`` call (``INSERT_ROWS``, raw values), a
whole batch per call; gspread-asyncio spaces calls out (``gspread_delay``) to stay inside the
API's per-minute write quota. The header is written only into an empty worksheet. The call-id
column is read back before each batch so a call is never written twice.

``api_url`` re-bases requests from https://sheets.googleapis.com to another server (a local
emulator in tests, a proxy in a locked-down network); the OAuth token endpoint comes from the
credentials file's ``token_uri`` as always.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from google.auth.credentials import NO_OP_TRUST_BOUNDARY_ENCODED_LOCATIONS
from google.oauth2.service_account import Credentials
from gspread.exceptions import APIError, SpreadsheetNotFound, WorksheetNotFound
from gspread_asyncio import AsyncioGspreadClientManager, AsyncioGspreadSpreadsheet
from requests.adapters import HTTPAdapter

from callkit.errors import (
    AgentError,
    ConfigError,
    DependencyTimeout,
    DependencyUnavailable,
    RateLimited,
)

SCOPES = ["https://www.googleapis.com/auth/spreadsheets"]
GOOGLE_SHEETS = "https://sheets.googleapis.com"


class _Rebase(HTTPAdapter):
    """Sends requests meant for Google's Sheets host to ``base`` instead."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base.rstrip("/")

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        if request.url and request.url.startswith(GOOGLE_SHEETS):
            request.url = self.base + request.url[len(GOOGLE_SHEETS) :]
        return super().send(request, *args, **kwargs)


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _translate(exc: Exception) -> AgentError:
    if isinstance(exc, SpreadsheetNotFound | WorksheetNotFound):
        return ConfigError(
            f"{type(exc).__name__}: check the spreadsheet id and that it is shared with the service account"
        )
    if isinstance(exc, APIError):
        status = exc.response.status_code
        message = f"Sheets API answered HTTP {status}"
        if status == 429:
            return RateLimited(message + " (quota)")
        if status >= 500 or status == 408:
            return DependencyUnavailable(message)
        if status in (401, 403, 404):
            return ConfigError(
                message
                + ": check the spreadsheet id and that it is shared with the service account"
            )
        return AgentError(message)
    if isinstance(exc, requests.Timeout):
        return DependencyTimeout("Sheets API did not answer in time")
    if isinstance(exc, requests.ConnectionError | OSError):
        return DependencyUnavailable(f"Sheets API unreachable: {type(exc).__name__}")
    if isinstance(exc, AgentError):
        return exc
    return AgentError(f"Sheets call failed: {type(exc).__name__}")


class _FailFastManager(AsyncioGspreadClientManager):  # type: ignore[misc]
    """gspread-asyncio retries API and network errors forever by default; the notifier's own
    policy (bounded retries with backoff, then the dead stream) decides instead."""

    async def handle_gspread_error(self, e: Exception, method: Any, args: Any, kwargs: Any) -> None:
        raise e

    async def handle_requests_error(
        self, e: Exception, method: Any, args: Any, kwargs: Any
    ) -> None:
        raise e


class SheetsSink:
    name = "sheets"

    def __init__(
        self,
        credentials_file: Path,
        spreadsheet_id: str,
        worksheet: str,
        *,
        api_url: str | None = None,
        timeout_s: float = 20.0,
        call_spacing_s: float = 1.1,
    ) -> None:
        if not credentials_file.is_file():
            raise ConfigError(f"Google credentials file not found: {credentials_file}")
        self.credentials_file = credentials_file
        self.spreadsheet_id = spreadsheet_id
        self.worksheet = worksheet
        self.api_url = api_url
        self._manager = _FailFastManager(
            self._credentials, gspread_delay=call_spacing_s, gspread_timeout=timeout_s
        )

    def _credentials(self) -> Credentials:
        creds: Credentials = Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
            str(self.credentials_file), scopes=SCOPES
        )
        if self.api_url:
            # google-auth looks up the account's regional access boundary directly at Google's IAM
            # host, bypassing api_url; behind an emulator or proxy there is no such host, so start
            # with the "no boundary" value google-auth itself uses and skip the lookup.
            manager = getattr(creds, "_rab_manager", None)
            if manager is not None:
                far = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=3650)
                manager.set_initial_regional_access_boundary(
                    NO_OP_TRUST_BOUNDARY_ENCODED_LOCATIONS, far
                )
        return creds

    def _range(self, a1: str) -> str:
        return "'" + self.worksheet.replace("'", "''") + "'!" + a1

    async def _spreadsheet(self) -> AsyncioGspreadSpreadsheet:
        client = await self._manager.authorize()
        if self.api_url:
            client.gc.http_client.session.mount(GOOGLE_SHEETS, _Rebase(self.api_url))
        return await client.open_by_key(self.spreadsheet_id)

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        try:
            sheet = await self._spreadsheet()
            return await getattr(sheet, name)(*args, **kwargs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise _translate(exc) from exc

    async def ensure_header(self, header: list[str]) -> None:
        reply = await self._call("values_get", self._range(f"A1:{column_letter(len(header) - 1)}1"))
        existing = (reply.get("values") or [[]])[0]
        if not existing:
            await self.append([header])
            return
        if existing != header:
            raise ConfigError(
                f"worksheet {self.worksheet!r} already has a different header; it is never rewritten: "
                "use an empty worksheet or restore the layout"
            )

    async def call_ids(self, column: int) -> set[str]:
        col = column_letter(column)
        reply = await self._call(
            "values_get", self._range(f"{col}2:{col}"), {"majorDimension": "COLUMNS"}
        )
        values = reply.get("values") or [[]]
        return {v for v in values[0] if v}

    async def append(self, rows: list[list[str]]) -> None:
        await self._call(
            "values_append",
            self._range("A1"),
            {"valueInputOption": "RAW", "insertDataOption": "INSERT_ROWS"},
            {"values": rows},
        )

    async def check(self) -> None:
        await self._call("values_get", self._range("A1:A1"))
