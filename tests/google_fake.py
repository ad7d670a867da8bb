"""A local stand-in for Google's OAuth 2.0 token endpoint and the Sheets v4 values API.

What it checks and returns follows Google's documentation:
- ``POST /token``: the JWT-bearer grant of a service account (RFC 7523). The assertion must be an
  RS256 JWT whose signature verifies against the service account's public key, with ``iss`` the
  client email, ``aud`` Google's token endpoint (https://oauth2.googleapis.com/token, which
  google-auth always sends, whatever ``token_uri`` the key file names), the spreadsheets scope and
  a lifetime of at most an hour.
  Answers ``{"access_token", "expires_in", "token_type": "Bearer"}`` or
  ``{"error": "invalid_grant", "error_description"}``.
- ``GET /v4/spreadsheets/{id}``: spreadsheet metadata (properties, sheets with gridProperties).
- ``GET /v4/spreadsheets/{id}/values/{range}``: a ValueRange (``range``, ``majorDimension``,
  ``values`` with trailing empty rows and cells omitted).
- ``POST /v4/spreadsheets/{id}/values/{range}:append``: appends after the last row of the table
  (``INSERT_ROWS``) and answers ``{"spreadsheetId", "tableRange", "updates": {…}}``.
Requests without a valid bearer token get 401. Faults can be injected: HTTP 429 or 500 for the
next N calls, or a delay (for client timeouts).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse

SCOPE = "https://www.googleapis.com/auth/spreadsheets"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def service_account(
    token_uri: str, email: str = "notifier@clinic-test.iam.gserviceaccount.com"
) -> tuple[dict[str, Any], Any]:
    """A service-account credentials document (as Google issues them) and its public key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "clinic-test",
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": email,
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
    }
    return info, key.public_key()


def _col(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def _letters(index: int) -> str:
    s = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        s = chr(65 + rem) + s
    return s


@dataclass
class Sheet:
    title: str
    sheet_id: int
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class Faults:
    status: int = 0
    count: int = 0
    delay_s: float = 0.0


class FakeGoogle:
    def __init__(
        self, spreadsheet_id: str, sheet_title: str, public_key: Any, client_email: str
    ) -> None:
        self.spreadsheet_id = spreadsheet_id
        self.sheet = Sheet(sheet_title, 0)
        self.public_key = public_key
        self.client_email = client_email
        self.tokens: dict[str, float] = {}
        self.faults = Faults()
        self.calls: list[str] = []
        self.app = FastAPI()
        self.app.post("/token")(self.token)
        self.app.get("/v4/spreadsheets/{sid}")(self.metadata)
        self.app.api_route("/v4/spreadsheets/{sid}/values/{rng:path}", methods=["GET", "POST"])(
            self.values
        )

    def fail_next(self, status: int, count: int = 1) -> None:
        self.faults = Faults(status=status, count=count)

    def slow(self, delay_s: float) -> None:
        self.faults = Faults(delay_s=delay_s)

    # ------------------------------------------------------------------ OAuth

    async def token(self, grant_type: str = Form(...), assertion: str = Form(...)) -> JSONResponse:
        if grant_type != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self._grant_error("unsupported_grant_type", f"grant_type {grant_type!r}")
        try:
            head_b64, body_b64, sig_b64 = assertion.split(".")
            header = json.loads(_b64url_decode(head_b64))
            claims = json.loads(_b64url_decode(body_b64))
            if header.get("alg") != "RS256":
                return self._grant_error("invalid_grant", "Invalid JWT: algorithm must be RS256")
            self.public_key.verify(
                _b64url_decode(sig_b64),
                f"{head_b64}.{body_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except Exception:
            return self._grant_error("invalid_grant", "Invalid JWT Signature.")
        now = time.time()
        if claims.get("iss") != self.client_email:
            return self._grant_error("invalid_grant", "Invalid JWT: unknown issuer")
        if claims.get("aud") != GOOGLE_TOKEN_AUDIENCE:
            return self._grant_error(
                "invalid_grant", "Invalid JWT: audience is not Google's token endpoint"
            )
        if SCOPE not in str(claims.get("scope", "")).split():
            return self._grant_error("invalid_scope", "The spreadsheets scope was not requested")
        if (
            not (claims.get("iat", 0) - 300 <= now <= claims.get("exp", 0))
            or claims["exp"] - claims["iat"] > 3600
        ):
            return self._grant_error(
                "invalid_grant", "Invalid JWT: Token must be a short-lived token"
            )
        access = "ya29." + secrets.token_urlsafe(32)
        self.tokens[access] = now + 3600
        return JSONResponse({"access_token": access, "expires_in": 3599, "token_type": "Bearer"})

    def _grant_error(self, error: str, description: str) -> JSONResponse:
        return JSONResponse({"error": error, "error_description": description}, status_code=400)

    # ------------------------------------------------------------------ Sheets

    async def _gate(self, request: Request, sid: str) -> JSONResponse | None:
        self.calls.append(f"{request.method} {request.url.path}")
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ")
        if not auth.startswith("Bearer ") or self.tokens.get(token, 0) < time.time():
            return self._api_error(
                401, "UNAUTHENTICATED", "Request had invalid authentication credentials."
            )
        if self.faults.delay_s:
            import asyncio

            await asyncio.sleep(self.faults.delay_s)
        if self.faults.count > 0:
            self.faults.count -= 1
            status = self.faults.status
            reason = "RESOURCE_EXHAUSTED" if status == 429 else "INTERNAL"
            return self._api_error(
                status, reason, "Quota exceeded" if status == 429 else "Internal error"
            )
        if sid != self.spreadsheet_id:
            return self._api_error(404, "NOT_FOUND", "Requested entity was not found.")
        return None

    def _api_error(self, code: int, status: str, message: str) -> JSONResponse:
        return JSONResponse(
            {"error": {"code": code, "message": message, "status": status}}, status_code=code
        )

    async def metadata(self, sid: str, request: Request) -> Any:
        if (error := await self._gate(request, sid)) is not None:
            return error
        width = max((len(r) for r in self.sheet.rows), default=0)
        return {
            "spreadsheetId": sid,
            "properties": {"title": "Clinic calls", "locale": "ru_RU", "timeZone": "Europe/Moscow"},
            "sheets": [
                {
                    "properties": {
                        "sheetId": self.sheet.sheet_id,
                        "title": self.sheet.title,
                        "index": 0,
                        "sheetType": "GRID",
                        "gridProperties": {
                            "rowCount": max(1000, len(self.sheet.rows)),
                            "columnCount": max(26, width),
                        },
                    }
                }
            ],
            "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{sid}/edit",
        }

    def _parse(self, rng: str) -> tuple[str, int, int | None, int, int | None]:
        """'Title'!K2:K -> (title, first row, last row or None, first col, last col or None), 0-based."""
        m = re.fullmatch(r"(?:'((?:[^']|'')+)'|([^!]+))!([A-Z]*)(\d*)(?::([A-Z]*)(\d*))?", rng)
        if not m:
            raise ValueError(rng)
        title = (m.group(1) or m.group(2)).replace("''", "'")
        c1, r1, c2, r2 = m.group(3), m.group(4), m.group(5), m.group(6)
        first_row = int(r1) - 1 if r1 else 0
        last_row = int(r2) - 1 if r2 else (first_row if r1 and m.group(5) is None else None)
        first_col = _col(c1) if c1 else 0
        last_col = _col(c2) if c2 else (first_col if c1 and m.group(5) is None else None)
        return title, first_row, last_row, first_col, last_col

    async def values(self, sid: str, rng: str, request: Request) -> Any:
        if (error := await self._gate(request, sid)) is not None:
            return error
        append = rng.endswith(":append")
        rng = rng.removesuffix(":append")
        try:
            title, r1, r2, c1, c2 = self._parse(rng)
        except ValueError:
            return self._api_error(400, "INVALID_ARGUMENT", f"Unable to parse range: {rng}")
        if title != self.sheet.title:
            return self._api_error(400, "INVALID_ARGUMENT", f"Unable to parse range: {rng}")
        if append and request.method == "POST":
            body = await request.json()
            if request.query_params.get("valueInputOption") not in ("RAW", "USER_ENTERED"):
                return self._api_error(
                    400, "INVALID_ARGUMENT", "'valueInputOption' is required but not specified"
                )
            new = [[str(v) for v in row] for row in body.get("values", [])]
            start = len(self.sheet.rows)
            self.sheet.rows.extend(new)
            width = max((len(r) for r in new), default=0)
            first = f"'{title}'!A{start + 1}"
            updated = f"{first}:{_letters(width - 1)}{start + len(new)}" if new else first
            table = f"'{title}'!A1:{_letters(width - 1)}{start}" if start else None
            reply: dict[str, Any] = {
                "spreadsheetId": sid,
                "updates": {
                    "spreadsheetId": sid,
                    "updatedRange": updated,
                    "updatedRows": len(new),
                    "updatedColumns": width,
                    "updatedCells": sum(len(r) for r in new),
                },
            }
            if table:
                reply["tableRange"] = table
            return reply
        rows = self.sheet.rows[r1 : None if r2 is None else r2 + 1]
        cells = [row[c1 : None if c2 is None else c2 + 1] for row in rows]
        while cells and not any(cells[-1]):
            cells.pop()
        cells = [_trim(r) for r in cells]
        major = request.query_params.get("majorDimension", "ROWS")
        if major == "COLUMNS":
            width = max((len(r) for r in cells), default=0)
            cells = [_trim([r[i] if i < len(r) else "" for r in cells]) for i in range(width)]
        reply = {"range": f"'{title}'!{rng.split('!', 1)[1]}", "majorDimension": major}
        if cells:
            reply["values"] = cells
        return reply


def _trim(row: list[str]) -> list[str]:
    row = list(row)
    while row and row[-1] == "":
        row.pop()
    return row
