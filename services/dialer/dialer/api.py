"""The campaign API: create from a CSV or JSON, start, pause, resume, cancel, watch; the DNC list.

Every route but the ops ones (/health, /ready, /metrics) needs ``Authorization: Bearer <token>``
(DIALER_API_TOKEN), compared in constant time. Errors have the stack's JSON error body.
"""

from __future__ import annotations

import hmac
import itertools
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile

from callkit.errors import AgentError, InvalidInput, NotFound
from callkit.events import validation_problems
from dialer import importer
from dialer.core.compliance import campaign_problems
from dialer.core.states import CampaignState
from dialer.spec import CampaignSpec, ContactRow, RowError

MAX_CSV_BYTES = 64 * 1024 * 1024
CHUNK = 256 * 1024


class Unauthorized(AgentError):
    code = "unauthorized"
    http_status = 401


class Created(BaseModel):
    id: str
    imported: int = Field(description="Contacts added.")
    duplicates: int = Field(0, description="Rows whose number was already in the campaign.")
    errors: list[RowError] = Field(description="Rows not imported, with the reason.")
    errors_total: int = Field(description="All rejected rows (the list holds the first 1000).")


class CampaignView(BaseModel):
    id: str
    name: str
    state: str
    reason: str | None = None
    counts: dict[str, dict[str, int]]
    abandon_rate: float | None = None
    spec: CampaignSpec
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class ContactView(BaseModel):
    id: str
    row: int | None = None
    phone: str
    name: str | None = None
    timezone: str | None = None
    state: str
    reason: str | None = None
    outcome: str | None = None
    attempts: int
    next_attempt_at: datetime | None = None


class DncEntry(BaseModel):
    number: str = Field(description="A phone number; stored in E.164.")


class DncView(BaseModel):
    number: str
    added_at: datetime
    source: str


class DncChange(BaseModel):
    number: str
    changed: bool = Field(description="False if the list already was as asked.")


def _token_check(token: str) -> Callable[..., None]:
    expected = token.encode()

    def check(authorization: Annotated[str | None, Header()] = None) -> None:
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise Unauthorized("a valid 'Authorization: Bearer <DIALER_API_TOKEN>' is required")

    return check


def _file_chunks(upload: UploadFile) -> Iterator[bytes]:
    total = 0
    while chunk := upload.file.read(CHUNK):
        total += len(chunk)
        if total > MAX_CSV_BYTES:
            raise InvalidInput(f"the CSV is larger than {MAX_CSV_BYTES // 2**20} MiB")
        yield chunk


def _spec_from_form(form: Any) -> CampaignSpec:
    data: dict[str, Any] = {}
    for name, value in form.multi_items():
        if name == "file" or not isinstance(value, str):
            continue
        if name in ("windows", "retry", "caps"):
            try:
                data[name] = json.loads(value)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"form field {name!r} is not JSON: {exc.msg}") from None
        else:
            data[name] = value
    return _spec(data)


def _spec(data: Any) -> CampaignSpec:
    try:
        return CampaignSpec.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(f"invalid campaign: {validation_problems(exc)}") from None


def install_routes(app: FastAPI, token: str) -> None:
    router = APIRouter(dependencies=[Depends(_token_check(token))], tags=["campaigns"])

    def store(request: Request) -> Any:
        return request.app.state.store

    def clock(request: Request) -> datetime:
        now: datetime = request.app.state.clock()
        return now

    async def view(request: Request, campaign_id: str) -> CampaignView:
        record = await store(request).campaign(campaign_id)
        if record is None:
            raise NotFound(f"no campaign {campaign_id!r}")
        dialer = getattr(request.app.state, "dialer", None)
        health = dialer.health.get(campaign_id) if dialer is not None else None
        return CampaignView(
            id=record.id,
            name=record.spec.name,
            state=str(record.state),
            reason=record.reason,
            counts=await store(request).counts(campaign_id),
            abandon_rate=health.abandon.rate if health is not None else None,
            spec=record.spec,
            created_at=record.created_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
        )

    @router.post(
        "/campaigns",
        response_model=Created,
        status_code=201,
        summary="Create a campaign (draft) from a CSV upload with form fields, or from JSON.",
        openapi_extra={
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "campaign": {"$ref": "#/components/schemas/CampaignSpec"},
                                "contacts": {"type": "array", "items": {"type": "object"}},
                            },
                            "required": ["campaign", "contacts"],
                        }
                    },
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "file": {"type": "string", "format": "binary"},
                                "name": {"type": "string"},
                            },
                            "required": ["file", "name"],
                        }
                    },
                }
            }
        },
    )
    async def create(request: Request) -> Created:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "multipart/form-data":
            form = await request.form()
            try:
                upload = form.get("file")
                if upload is None or isinstance(upload, str):
                    raise InvalidInput("multipart body needs a 'file' part with the CSV")
                spec = _spec_from_form(form)
                # The server spooled the upload to disk; it is read and imported in chunks.
                rows = importer.read_csv(
                    _file_chunks(upload),
                    region=spec.default_region,
                    default_timezone=spec.timezone,
                )
                return await _import(request, spec, rows)
            finally:
                await form.close()
        if kind == "application/json":
            try:
                body = json.loads(await request.body())
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
                raise InvalidInput(f"body is not valid JSON: {exc}") from None
            if not isinstance(body, dict) or not isinstance(body.get("contacts"), list):
                raise InvalidInput("JSON body needs 'campaign' (an object) and 'contacts' (a list)")
            spec = _spec(body.get("campaign"))
            rows = importer.read_json(
                body["contacts"], region=spec.default_region, default_timezone=spec.timezone
            )
            return await _import(request, spec, rows)
        raise InvalidInput(
            "send multipart/form-data (a CSV 'file' and form fields) or application/json"
        )

    async def _import(
        request: Request, spec: CampaignSpec, items: Iterator[ContactRow | RowError]
    ) -> Created:
        # The first row is read before the campaign exists: a file without a phone column (or
        # an empty one) is refused without leaving an empty campaign behind.
        first = next(items, None)
        errors: list[RowError] = []
        tally = {"errors": 0, "rows": 0}

        def good_rows() -> Iterator[ContactRow]:
            for item in itertools.chain([first] if first is not None else [], items):
                if isinstance(item, RowError):
                    tally["errors"] += 1
                    if len(errors) < 1000:
                        errors.append(item)
                    continue
                tally["rows"] += 1
                yield item

        now = clock(request)
        campaign_id = await store(request).create_campaign(spec, now=now)
        try:
            imported = await store(request).add_contacts(campaign_id, good_rows(), now=now)
        except InvalidInput as exc:
            # The file broke off half way (undecodable, too many rows): the campaign is kept,
            # cancelled, with the reason, so nothing half-imported is ever started.
            await store(request).transition(
                campaign_id,
                CampaignState.CANCELLED,
                reason=f"import failed: {exc.message}",
                now=now,
            )
            raise
        return Created(
            id=campaign_id,
            imported=imported,
            duplicates=tally["rows"] - imported,
            errors=errors,
            errors_total=tally["errors"],
        )

    @router.get("/campaigns", response_model=list[CampaignView], summary="All campaigns.")
    async def all_campaigns(request: Request) -> list[CampaignView]:
        return [await view(request, record.id) for record in await store(request).campaigns()]

    @router.get("/campaigns/{campaign_id}", response_model=CampaignView, summary="One campaign.")
    async def one(request: Request, campaign_id: str) -> CampaignView:
        return await view(request, campaign_id)

    @router.get(
        "/campaigns/{campaign_id}/contacts",
        response_model=list[ContactView],
        summary="The campaign's contacts and their state.",
    )
    async def contacts(
        request: Request,
        campaign_id: str,
        state: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[ContactView]:
        if await store(request).campaign(campaign_id) is None:
            raise NotFound(f"no campaign {campaign_id!r}")
        records = await store(request).contacts(
            campaign_id, state=state, limit=limit, offset=offset
        )
        return [ContactView.model_validate(record, from_attributes=True) for record in records]

    async def move(request: Request, campaign_id: str, to: CampaignState) -> CampaignView:
        record = await store(request).campaign(campaign_id)
        if record is None:
            raise NotFound(f"no campaign {campaign_id!r}")
        if to is CampaignState.RUNNING and record.state != CampaignState.RUNNING:
            total = await store(request).counts(campaign_id)
            contacts_n = sum(total.get("state", {}).values())
            without = await store(request).contacts_without_consent(campaign_id)
            problems = campaign_problems(
                record.spec, contacts=contacts_n, contacts_without_consent=without
            )
            if problems:
                raise InvalidInput(
                    "the campaign cannot start: " + "; ".join(problems), code="not_startable"
                )
        await store(request).transition(campaign_id, to, now=clock(request))
        return await view(request, campaign_id)

    for action, target in (
        ("start", CampaignState.RUNNING),
        ("pause", CampaignState.PAUSED),
        ("resume", CampaignState.RUNNING),
        ("cancel", CampaignState.CANCELLED),
    ):

        def route(target: CampaignState = target) -> Any:
            async def change(request: Request, campaign_id: str) -> CampaignView:
                return await move(request, campaign_id, target)

            return change

        router.add_api_route(
            f"/campaigns/{{campaign_id}}/{action}",
            route(),
            methods=["POST"],
            response_model=CampaignView,
            summary=f"{action.capitalize()} the campaign (idempotent).",
            name=f"campaign_{action}",
        )

    @router.post("/dnc", response_model=DncChange, summary="Add a number to the do-not-call list.")
    async def dnc_add(request: Request, entry: DncEntry) -> DncChange:
        number = importer.normalize_number(entry.number, request.app.state.settings_region)
        changed = await store(request).add_dnc(number, source="api", now=clock(request))
        return DncChange(number=number, changed=changed)

    @router.delete("/dnc/{number}", response_model=DncChange, summary="Take a number off the list.")
    async def dnc_remove(request: Request, number: str) -> DncChange:
        normalized = importer.normalize_number(number, request.app.state.settings_region)
        if not await store(request).remove_dnc(normalized):
            raise NotFound("that number is not on the do-not-call list", code="not_on_dnc")
        return DncChange(number=normalized, changed=True)

    @router.get("/dnc", response_model=list[DncView], summary="The do-not-call list.")
    async def dnc_list(
        request: Request,
        limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[DncView]:
        entries = await store(request).dnc(limit=limit, offset=offset)
        return [DncView(number=n, added_at=at, source=source) for n, at, source in entries]

    app.include_router(router)
