"""The dialer's repository: every method is one short transaction on SQLite or PostgreSQL.

Several dialer replicas share one database, so everything that hands out work is atomic:

- a contact is *claimed* (state ``dialing``, a lease with an owner and an expiry, a new attempt
  row) in the transaction that found it due; PostgreSQL skips rows another replica has locked
  (``FOR UPDATE SKIP LOCKED``), SQLite lets one writer at a time in (``BEGIN IMMEDIATE``), and
  the claiming UPDATE re-checks the state either way;
- changes of state are conditional UPDATEs (``… WHERE state = <the state we saw>``), so of two
  replicas racing only one applies a change, and the other sees it and does nothing;
- methods that change a contact and its attempt lock the contact first, always in that order.

Times are timezone-aware UTC ``datetime``s in and out (see :class:`~.schema.UTCDateTime`); the
caller passes ``now`` so the store never reads a clock.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any, Final

from sqlalchemy import delete, func, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    InterfaceError,
    InternalError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.dml import Insert

from callkit.errors import AgentError, DependencyUnavailable, InvalidInput, NotFound
from dialer.core import callbacks
from dialer.core.callbacks import CallbackRequest
from dialer.core.states import (
    ACTIVE_STATES,
    CAMPAIGN_TRANSITIONS,
    FINAL_STATES,
    CampaignState,
    ContactState,
)
from dialer.spec import CampaignSpec, ContactRow
from dialer.store.database import connect, upgrade, writer
from dialer.store.records import (
    DNC_OUTCOME,
    DNC_REASON,
    AttemptRecord,
    CampaignRecord,
    Claim,
    ContactRecord,
)
from dialer.store.schema import Attempt, Campaign, Contact, DoNotCall

#: States a contact may be claimed from (when due and not leased).
CLAIMABLE: Final = (ContactState.PENDING, ContactState.SCHEDULED)
#: Contacts inserted per statement (14 values each: well under either database's limit).
IMPORT_BATCH: Final = 500
_ACTIVE: Final = tuple(ACTIVE_STATES)
_FINAL: Final = tuple(FINAL_STATES)


class Store:
    """Campaigns, contacts, attempts and the do-not-call list (see the module docstring)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._writer = writer(engine)
        self._postgres = engine.dialect.name == "postgresql"

    @classmethod
    async def open(cls, url: str) -> Store:
        """A store on ``url`` (``sqlite+aiosqlite:///file.db`` or ``postgresql+asyncpg://…``).

        Connections are made when first needed; :meth:`ping` says whether the database answers.
        """
        return cls(connect(url))

    async def migrate(self) -> None:
        """Bring the schema to the newest revision; safe when several replicas start at once."""
        try:
            await upgrade(self._engine)
        except (DBAPIError, PoolTimeout, OSError, TimeoutError) as exc:
            if not _unreachable(exc):
                raise
            raise _unavailable(exc) from exc

    async def close(self) -> None:
        await self._engine.dispose()

    async def ping(self) -> None:
        """Raise DependencyUnavailable unless the database runs a query."""
        async with self._tx() as conn:
            await conn.execute(text("SELECT 1"))

    # ------------------------------------------------------------------ campaigns

    async def create_campaign(self, spec: CampaignSpec, *, now: datetime) -> str:
        """A new campaign, in ``draft``; returns its id."""
        campaign_id = str(uuid.uuid4())
        async with self._tx(write=True) as conn:
            await conn.execute(
                insert(Campaign).values(
                    id=campaign_id,
                    name=spec.name,
                    spec=spec.model_dump(mode="json"),
                    state=CampaignState.DRAFT,
                    created_at=now,
                    updated_at=now,
                )
            )
        return campaign_id

    async def ensure_campaign(self, campaign_id: str, spec: CampaignSpec, *, now: datetime) -> bool:
        """A campaign of a known id, in ``draft``, unless it exists already (as it is then):
        True if this call created it. Replicas racing to create it create one."""
        values = {
            "id": campaign_id,
            "name": spec.name,
            "spec": spec.model_dump(mode="json"),
            "state": CampaignState.DRAFT,
            "created_at": now,
            "updated_at": now,
        }
        async with self._tx(write=True) as conn:
            statement = self._insert_new(Campaign, [values], ["id"])
            return bool((await conn.execute(statement.returning(Campaign.id))).all())

    async def campaign(self, campaign_id: str) -> CampaignRecord | None:
        async with self._tx() as conn:
            row = (
                (await conn.execute(select(Campaign).where(Campaign.id == campaign_id)))
                .mappings()
                .first()
            )
        return _campaign(row) if row is not None else None

    async def campaigns(self) -> list[CampaignRecord]:
        """Every campaign, the newest first."""
        query = select(Campaign).order_by(Campaign.created_at.desc(), Campaign.id)
        async with self._tx() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_campaign(row) for row in rows]

    async def running_campaigns(self) -> list[CampaignRecord]:
        query = (
            select(Campaign)
            .where(Campaign.state == CampaignState.RUNNING)
            .order_by(Campaign.created_at, Campaign.id)
        )
        async with self._tx() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_campaign(row) for row in rows]

    async def transition(
        self, campaign_id: str, to: CampaignState, *, reason: str | None = None, now: datetime
    ) -> CampaignRecord:
        """Move a campaign to ``to``; a campaign already there is left as it is.

        A move that :data:`CAMPAIGN_TRANSITIONS` does not allow is refused with InvalidInput
        (code ``invalid_transition``). The UPDATE names the state it starts from, so when two
        replicas race, one applies the move and the other finds it done.
        """
        for _ in range(10):
            current = await self.campaign(campaign_id)
            if current is None:
                raise NotFound(f"no campaign {campaign_id!r}")
            if current.state == to:
                return current
            if to not in CAMPAIGN_TRANSITIONS[current.state]:
                raise InvalidInput(
                    f"a campaign cannot go from {current.state} to {to}",
                    code="invalid_transition",
                )
            values: dict[str, Any] = {"state": to, "state_reason": reason, "updated_at": now}
            if to is CampaignState.RUNNING and current.started_at is None:
                values["started_at"] = now
            if to in (CampaignState.COMPLETED, CampaignState.CANCELLED):
                values["finished_at"] = now
            async with self._tx(write=True) as conn:
                moved = await conn.execute(
                    update(Campaign)
                    .where(Campaign.id == campaign_id, Campaign.state == current.state)
                    .values(**values)
                )
            if moved.rowcount == 1:
                done = await self.campaign(campaign_id)
                assert done is not None
                return done
        raise AgentError(f"campaign {campaign_id!r} kept changing state; try again")

    # ------------------------------------------------------------------ contacts

    async def add_contacts(
        self, campaign_id: str, rows: Iterable[ContactRow], *, now: datetime
    ) -> int:
        """Import contacts in batches, one transaction each; returns how many were new.

        A number already in the campaign (from this import or an earlier one) is skipped, so
        an import that failed halfway can simply be run again. A number on the do-not-call list
        is kept but ``skipped`` (reason ``do-not-call``, outcome ``skipped_dnc``), so the
        campaign's counts show it.
        """
        if await self.campaign(campaign_id) is None:
            raise NotFound(f"no campaign {campaign_id!r}")
        seen: set[str] = set()
        inserted = 0
        for batch in _batches(rows, IMPORT_BATCH):
            fresh = []
            for row in batch:
                if row.phone not in seen:
                    seen.add(row.phone)
                    fresh.append(row)
            if not fresh:
                continue
            async with self._tx(write=True) as conn:
                blocked = set(
                    (
                        await conn.execute(
                            select(DoNotCall.phone).where(
                                DoNotCall.phone.in_([row.phone for row in fresh])
                            )
                        )
                    ).scalars()
                )
                values = [
                    _new_contact(campaign_id, row, row.phone in blocked, now) for row in fresh
                ]
                statement = self._insert_new(Contact, values, ["campaign_id", "phone"])
                result = await conn.execute(statement.returning(Contact.id))
                inserted += len(result.all())
        return inserted

    async def add_callback(
        self, campaign_id: str, request: CallbackRequest, *, now: datetime
    ) -> tuple[ContactRecord, bool]:
        """Keep a callback an inbound caller asked for: the contact of its number in the
        campaign, due at ``request.due``; True when this call changed it.

        A number new to the campaign becomes a ``scheduled`` contact (``skipped`` when it is
        on the do-not-call list). A number the campaign has is changed only by a newer request
        (:func:`~dialer.core.callbacks.supersedes`; the same request read again, or an older
        one, changes nothing): a waiting or finished contact is scheduled anew with a fresh
        attempt budget, one in a call is left to its call, and a listed number stays
        uncalled.
        """
        row = request.contact
        mine = (Contact.campaign_id == campaign_id) & (Contact.phone == row.phone)
        async with self._tx(write=True) as conn:
            found = await self._lock_where(conn, mine)
            blocked = (
                await conn.scalar(select(DoNotCall.phone).where(DoNotCall.phone == row.phone))
                is not None
            )
            if found is None:
                values = _new_contact(campaign_id, row, blocked, now) | {
                    "consent": request.consent,
                    "fields": callbacks.request_fields(request, 0),
                }
                if not blocked:
                    values |= {
                        "state": ContactState.SCHEDULED,
                        "reason": callbacks.REASON,
                        "next_attempt_at": request.due,
                    }
                statement = self._insert_new(Contact, [values], ["campaign_id", "phone"])
                if (await conn.execute(statement.returning(Contact.id))).all():
                    return await self._contact_in(conn, values["id"]), True
                # Another replica inserted the number meanwhile: a request like any other.
                found = await self._lock_where(conn, mine)
                assert found is not None
            fields = dict(found["fields"] or {})
            state = ContactState(found["state"])
            if not callbacks.supersedes(request, fields) or state in ACTIVE_STATES or blocked:
                return _contact(found), False
            await conn.execute(
                update(Contact)
                .where(Contact.id == found["id"])
                .values(
                    state=ContactState.SCHEDULED,
                    reason=callbacks.REASON,
                    outcome=None,
                    next_attempt_at=request.due,
                    name=row.name or found["name"],
                    timezone=row.timezone or found["timezone"],
                    consent=request.consent,
                    fields=callbacks.request_fields(request, found["attempts"]),
                    failed_retries=0,
                    lease_owner=None,
                    lease_until=None,
                    updated_at=now,
                )
            )
            return await self._contact_in(conn, found["id"]), True

    async def contact(self, contact_id: str) -> ContactRecord | None:
        async with self._tx() as conn:
            row = (
                (await conn.execute(select(Contact).where(Contact.id == contact_id)))
                .mappings()
                .first()
            )
        return _contact(row) if row is not None else None

    async def contacts(
        self, campaign_id: str, *, state: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[ContactRecord]:
        """A page of a campaign's contacts in the order of the imported file."""
        query = select(Contact).where(Contact.campaign_id == campaign_id)
        if state is not None:
            query = query.where(Contact.state == _contact_state(state))
        query = query.order_by(Contact.row, Contact.id).limit(limit).offset(offset)
        async with self._tx() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_contact(row) for row in rows]

    async def counts(self, campaign_id: str) -> dict[str, dict[str, int]]:
        """Contacts per state (every state, zeros included) and per final outcome."""
        by_state = (
            select(Contact.state, func.count())
            .where(Contact.campaign_id == campaign_id)
            .group_by(Contact.state)
        )
        by_outcome = (
            select(Contact.outcome, func.count())
            .where(Contact.campaign_id == campaign_id, Contact.outcome.is_not(None))
            .group_by(Contact.outcome)
        )
        async with self._tx() as conn:
            states = {str(s): int(n) for s, n in (await conn.execute(by_state)).all()}
            outcomes = {str(o): int(n) for o, n in (await conn.execute(by_outcome)).all()}
        return {
            "state": {str(s): states.get(s, 0) for s in ContactState},
            "outcome": dict(sorted(outcomes.items())),
        }

    async def remaining(self, campaign_id: str) -> int:
        """Contacts not yet done or skipped."""
        return await self._count(Contact.campaign_id == campaign_id, Contact.state.not_in(_FINAL))

    async def contacts_without_consent(self, campaign_id: str) -> int:
        """Contacts still to be called that carry no consent reference."""
        return await self._count(
            Contact.campaign_id == campaign_id,
            Contact.state.not_in(_FINAL),
            or_(Contact.consent.is_(None), Contact.consent == ""),
        )

    # ------------------------------------------------------------------ claims and attempts

    async def claim_due(
        self, campaign_id: str, *, now: datetime, limit: int, owner: str, lease_s: float
    ) -> list[Claim]:
        """Claim up to ``limit`` due contacts of a running campaign for ``owner``.

        Due: ``pending`` or ``scheduled`` with ``next_attempt_at`` passed (or unset) and no live
        lease; retries that came due are taken before contacts never dialled. Each claimed
        contact goes to ``dialing`` with a lease until ``now + lease_s``, its attempt count
        goes up by one, and an attempt row is written. No two callers ever get one contact.
        """
        if limit <= 0:
            return []
        until = _utc(now) + timedelta(seconds=lease_s)
        free = or_(Contact.lease_until.is_(None), Contact.lease_until < now)
        due = (
            select(Contact)
            .join(Campaign, Campaign.id == Contact.campaign_id)
            .where(
                Contact.campaign_id == campaign_id,
                Campaign.state == CampaignState.RUNNING,
                Contact.state.in_(CLAIMABLE),
                or_(Contact.next_attempt_at.is_(None), Contact.next_attempt_at <= now),
                free,
            )
            .order_by(Contact.next_attempt_at.is_(None), Contact.next_attempt_at, Contact.row)
            .limit(limit)
        )
        if self._postgres:
            due = due.with_for_update(of=Contact, skip_locked=True)
        claims: list[Claim] = []
        async with self._tx(write=True) as conn:
            for row in (await conn.execute(due)).mappings().all():
                taken = await conn.execute(
                    update(Contact)
                    .where(Contact.id == row["id"], Contact.state.in_(CLAIMABLE), free)
                    .values(
                        state=ContactState.DIALING,
                        lease_owner=owner,
                        lease_until=until,
                        attempts=Contact.attempts + 1,
                        updated_at=now,
                    )
                )
                if taken.rowcount != 1:
                    continue
                claims.append(
                    Claim(
                        contact_id=row["id"],
                        attempt_id=str(uuid.uuid4()),
                        campaign_id=campaign_id,
                        phone=row["phone"],
                        name=row["name"],
                        timezone=row["timezone"],
                        consent=row["consent"],
                        fields=dict(row["fields"] or {}),
                        attempt_number=row["attempts"] + 1,
                        owner=owner,
                        lease_until=until,
                    )
                )
            if claims:
                await conn.execute(
                    insert(Attempt),
                    [
                        {
                            "id": c.attempt_id,
                            "contact_id": c.contact_id,
                            "campaign_id": c.campaign_id,
                            "phone": c.phone,
                            "number": c.attempt_number,
                            "started_at": now,
                            "owner": owner,
                        }
                        for c in claims
                    ],
                )
        return claims

    async def release(
        self,
        claim: Claim,
        until: datetime,
        reason: str,
        *,
        now: datetime,
        unsent_call: str | None = None,
    ) -> bool:
        """Give a claim back before its call went out (a closed window, a cap, no free slot).

        The contact goes to ``scheduled`` at ``until`` with ``reason``, its attempt row is
        deleted and its attempt count restored: the claim costs the contact nothing. False
        (nothing changed) when the attempt has a call already or the lease is no longer ours.

        ``unsent_call`` is a channel uuid :meth:`mark_dialing` may have recorded (its reply was
        lost) for an originate the caller knows never went out: such an attempt is given back
        too.
        """
        async with self._tx(write=True) as conn:
            contact = await self._lock_contact(conn, claim.contact_id)
            if (
                contact is None
                or contact["state"] != ContactState.DIALING
                or contact["lease_owner"] != claim.owner
            ):
                return False
            return await self._undo_claim(
                conn, claim.contact_id, claim.attempt_id, until, reason, now, unsent_call
            )

    async def defer(self, contact_id: str, *, until: datetime, reason: str, now: datetime) -> bool:
        """Put a contact off to ``until`` without spending one of its attempts.

        A waiting contact (``pending``, ``scheduled``) is rescheduled; a claimed one whose call
        has not gone out is released as by :meth:`release`, whoever holds it. False for a
        contact in a call, finished, or unknown.
        """
        async with self._tx(write=True) as conn:
            contact = await self._lock_contact(conn, contact_id)
            if contact is None:
                return False
            if contact["state"] in CLAIMABLE:
                await conn.execute(
                    update(Contact)
                    .where(Contact.id == contact_id)
                    .values(
                        state=ContactState.SCHEDULED,
                        next_attempt_at=until,
                        reason=reason,
                        updated_at=now,
                    )
                )
                return True
            if contact["state"] != ContactState.DIALING:
                return False
            latest = await conn.scalar(
                select(Attempt.id).where(
                    Attempt.contact_id == contact_id, Attempt.number == contact["attempts"]
                )
            )
            if latest is None:
                return False
            return await self._undo_claim(conn, contact_id, latest, until, reason, now)

    async def mark_dialing(self, attempt_id: str, *, call_id: str) -> bool:
        """Record, just before the originate goes out, the channel uuid it will carry: from now
        on the claim can no longer be given back for free, and a replica that takes the
        contact over asks the switch for that channel instead of dialling again."""
        async with self._tx(write=True) as conn:
            marked = await conn.execute(
                update(Attempt)
                .where(
                    Attempt.id == attempt_id,
                    Attempt.call_id.is_(None),
                    Attempt.ended_at.is_(None),
                )
                .values(call_id=call_id)
            )
        return bool(marked.rowcount == 1)

    async def mark_answered(
        self,
        attempt_id: str,
        *,
        call_id: str,
        now: datetime,
        lease_until: datetime | None = None,
    ) -> bool:
        """Record that the attempt's call was answered: the contact goes to ``in_call``.

        ``lease_until`` extends the contact's lease as well. False when the attempt was already
        answered or has ended (a repeated event changes nothing).
        """
        async with self._tx(write=True) as conn:
            attempt = await self._attempt_row(conn, attempt_id)
            contact = await self._lock_contact(conn, attempt["contact_id"])
            answered = await conn.execute(
                update(Attempt)
                .where(
                    Attempt.id == attempt_id,
                    Attempt.answered_at.is_(None),
                    Attempt.ended_at.is_(None),
                )
                .values(answered_at=now, call_id=call_id)
            )
            if answered.rowcount != 1 or contact is None:
                return False
            values: dict[str, Any] = {"state": ContactState.IN_CALL, "updated_at": now}
            if lease_until is not None:
                values["lease_until"] = lease_until
            await conn.execute(
                update(Contact)
                .where(Contact.id == contact["id"], Contact.state == ContactState.DIALING)
                .values(**values)
            )
            return True

    async def extend_lease(self, contact_id: str, owner: str, until: datetime) -> bool:
        """Keep ``owner``'s lease on a contact in a call until ``until``; False if not its own."""
        async with self._tx(write=True) as conn:
            extended = await conn.execute(
                update(Contact)
                .where(
                    Contact.id == contact_id,
                    Contact.lease_owner == owner,
                    Contact.state.in_(_ACTIVE),
                )
                .values(lease_until=until)
            )
        return bool(extended.rowcount == 1)

    async def finish_attempt(
        self,
        attempt_id: str,
        *,
        outcome: str,
        hangup_cause: str | None,
        next_attempt_at: datetime | None,
        now: datetime,
        failed_retry: bool = False,
        reason: str | None = None,
    ) -> ContactRecord:
        """Record how an attempt ended and what becomes of its contact; the lease is released.

        With ``next_attempt_at`` the contact is ``scheduled`` then (``reason``, by default the
        outcome, says why); without, it is ``done`` with ``outcome`` (or ``skipped`` when the
        outcome is ``skipped_dnc``). ``failed_retry`` counts a retry after a network failure.
        Finishing an attempt that has already ended returns the contact unchanged.
        """
        async with self._tx(write=True) as conn:
            found = await self._attempt_row(conn, attempt_id)
            contact = await self._lock_contact(conn, found["contact_id"])
            assert contact is not None  # the foreign key keeps it
            ended = await conn.execute(
                update(Attempt)
                .where(Attempt.id == attempt_id, Attempt.ended_at.is_(None))
                .values(ended_at=now, outcome=outcome, hangup_cause=hangup_cause)
            )
            if ended.rowcount == 1 and contact["state"] in ACTIVE_STATES:
                values: dict[str, Any] = {
                    "lease_owner": None,
                    "lease_until": None,
                    "updated_at": now,
                    "next_attempt_at": next_attempt_at,
                }
                if failed_retry:
                    values["failed_retries"] = Contact.failed_retries + 1
                if next_attempt_at is not None:
                    values |= {"state": ContactState.SCHEDULED, "reason": reason or outcome}
                elif outcome == DNC_OUTCOME:
                    values |= {"state": ContactState.SKIPPED, "reason": DNC_REASON}
                    values["outcome"] = outcome
                else:
                    values |= {"state": ContactState.DONE, "reason": reason, "outcome": outcome}
                await conn.execute(
                    update(Contact).where(Contact.id == contact["id"]).values(**values)
                )
            row = (
                (await conn.execute(select(Contact).where(Contact.id == contact["id"])))
                .mappings()
                .one()
            )
        return _contact(row)

    async def expired_leases(self, *, now: datetime, limit: int = 100) -> list[Claim]:
        """Contacts in ``dialing`` or ``in_call`` whose lease ran out: their replica is gone.

        Each comes with its latest attempt and the owner that let the lease lapse.
        """
        query = (
            select(Contact, Attempt.id.label("attempt_id"))
            .join(
                Attempt,
                (Attempt.contact_id == Contact.id) & (Attempt.number == Contact.attempts),
            )
            .where(Contact.state.in_(_ACTIVE), Contact.lease_until < now)
            .order_by(Contact.lease_until)
            .limit(limit)
        )
        async with self._tx() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            Claim(
                contact_id=row["id"],
                attempt_id=row["attempt_id"],
                campaign_id=row["campaign_id"],
                phone=row["phone"],
                name=row["name"],
                timezone=row["timezone"],
                consent=row["consent"],
                fields=dict(row["fields"] or {}),
                attempt_number=row["attempts"],
                owner=row["lease_owner"] or "",
                lease_until=row["lease_until"],
            )
            for row in rows
        ]

    async def take_over(
        self, contact_id: str, *, owner: str, lease_s: float, now: datetime
    ) -> bool:
        """Take the lapsed lease of a contact in a call; False if it is live or someone was first."""
        async with self._tx(write=True) as conn:
            taken = await conn.execute(
                update(Contact)
                .where(
                    Contact.id == contact_id,
                    Contact.state.in_(_ACTIVE),
                    Contact.lease_until < now,
                )
                .values(
                    lease_owner=owner,
                    lease_until=now + timedelta(seconds=lease_s),
                    updated_at=now,
                )
            )
        return bool(taken.rowcount == 1)

    async def attempt(self, attempt_id: str) -> AttemptRecord | None:
        return await self._one_attempt(Attempt.id == attempt_id)

    async def attempt_by_call(self, call_id: str) -> AttemptRecord | None:
        return await self._one_attempt(Attempt.call_id == call_id)

    async def callbacks_asked(self, contact_id: str, *, after: int = 0) -> int:
        """How many of the contact's ended attempts after its attempt number ``after`` the
        callee answered by asking to be called back."""
        query = select(func.count()).where(
            Attempt.contact_id == contact_id,
            Attempt.number > after,
            Attempt.outcome == "callback",
            Attempt.ended_at.is_not(None),
        )
        async with self._tx() as conn:
            return int(await conn.scalar(query) or 0)

    async def attempts_for_number(
        self, phone: str, *, since: datetime, exclude: str | None = None
    ) -> list[datetime]:
        """When ``phone`` was tried since ``since``, in every campaign, oldest first.

        ``exclude`` leaves one attempt out (the one being checked against the caps).
        """
        query = select(Attempt.started_at).where(
            Attempt.phone == phone, Attempt.started_at >= since
        )
        if exclude is not None:
            query = query.where(Attempt.id != exclude)
        async with self._tx() as conn:
            return list((await conn.execute(query.order_by(Attempt.started_at))).scalars())

    # ------------------------------------------------------------------ do-not-call list

    async def add_dnc(self, phone: str, *, source: str, now: datetime) -> bool:
        """Put ``phone`` on the list (False if it was there) and skip its waiting contacts.

        Contacts of that number still waiting (``pending``, ``scheduled``) in any campaign are
        skipped at once; a call already in progress is left to finish.
        """
        async with self._tx(write=True) as conn:
            statement = self._insert_new(
                DoNotCall, [{"phone": phone, "added_at": now, "source": source}], ["phone"]
            )
            added = bool((await conn.execute(statement.returning(DoNotCall.phone))).all())
            await conn.execute(
                update(Contact)
                .where(Contact.phone == phone, Contact.state.in_(CLAIMABLE))
                .values(
                    state=ContactState.SKIPPED,
                    reason=DNC_REASON,
                    outcome=DNC_OUTCOME,
                    next_attempt_at=None,
                    updated_at=now,
                )
            )
        return added

    async def remove_dnc(self, phone: str) -> bool:
        """Take ``phone`` off the list (False if it was not on it); skipped contacts stay so."""
        async with self._tx(write=True) as conn:
            removed = await conn.execute(delete(DoNotCall).where(DoNotCall.phone == phone))
        return bool(removed.rowcount == 1)

    async def is_dnc(self, phone: str) -> bool:
        async with self._tx() as conn:
            found = await conn.scalar(select(DoNotCall.phone).where(DoNotCall.phone == phone))
        return found is not None

    async def dnc(self, limit: int = 1000, offset: int = 0) -> list[tuple[str, datetime, str]]:
        """A page of the list: (number, when it was added, who added it), the newest first."""
        query = (
            select(DoNotCall.phone, DoNotCall.added_at, DoNotCall.source)
            .order_by(DoNotCall.added_at.desc(), DoNotCall.phone)
            .limit(limit)
            .offset(offset)
        )
        async with self._tx() as conn:
            return [(p, at, s) for p, at, s in (await conn.execute(query)).all()]

    # ------------------------------------------------------------------ internals

    @contextlib.asynccontextmanager
    async def _tx(self, *, write: bool = False) -> AsyncIterator[AsyncConnection]:
        """One transaction; a database that cannot be reached is DependencyUnavailable."""
        try:
            async with (self._writer if write else self._engine).begin() as conn:
                yield conn
        except (DBAPIError, PoolTimeout, OSError, TimeoutError) as exc:
            if not _unreachable(exc):
                raise
            raise _unavailable(exc) from exc

    def _insert_new(self, model: type[Any], values: list[dict[str, Any]], key: list[str]) -> Insert:
        """INSERT that skips rows whose ``key`` exists already (ON CONFLICT DO NOTHING)."""
        if self._postgres:
            return postgres_insert(model).values(values).on_conflict_do_nothing(index_elements=key)
        return sqlite_insert(model).values(values).on_conflict_do_nothing(index_elements=key)

    async def _lock_contact(self, conn: AsyncConnection, contact_id: str) -> RowMapping | None:
        """The contact's row, locked until the transaction ends (SQLite: the write lock is)."""
        query = select(Contact).where(Contact.id == contact_id)
        if self._postgres:
            query = query.with_for_update()
        return (await conn.execute(query)).mappings().first()

    async def _lock_where(self, conn: AsyncConnection, condition: Any) -> RowMapping | None:
        """The one contact ``condition`` selects, locked as by :meth:`_lock_contact`."""
        query = select(Contact).where(condition)
        if self._postgres:
            query = query.with_for_update()
        return (await conn.execute(query)).mappings().first()

    async def _contact_in(self, conn: AsyncConnection, contact_id: str) -> ContactRecord:
        row = (await conn.execute(select(Contact).where(Contact.id == contact_id))).mappings()
        return _contact(row.one())

    async def _attempt_row(self, conn: AsyncConnection, attempt_id: str) -> RowMapping:
        row = (await conn.execute(select(Attempt).where(Attempt.id == attempt_id))).mappings()
        found = row.first()
        if found is None:
            raise NotFound(f"no attempt {attempt_id!r}")
        return found

    async def _undo_claim(
        self,
        conn: AsyncConnection,
        contact_id: str,
        attempt_id: str,
        until: datetime,
        reason: str,
        now: datetime,
        unsent_call: str | None = None,
    ) -> bool:
        """Delete a claim's attempt if its call never went out, and reschedule the contact."""
        unsent: Any = Attempt.call_id.is_(None)
        if unsent_call is not None:
            unsent = or_(unsent, Attempt.call_id == unsent_call)
        gone = await conn.execute(
            delete(Attempt).where(
                Attempt.id == attempt_id,
                Attempt.contact_id == contact_id,
                unsent,
                Attempt.answered_at.is_(None),
                Attempt.ended_at.is_(None),
            )
        )
        if gone.rowcount != 1:
            return False
        await conn.execute(
            update(Contact)
            .where(Contact.id == contact_id)
            .values(
                state=ContactState.SCHEDULED,
                attempts=Contact.attempts - 1,
                next_attempt_at=until,
                reason=reason,
                lease_owner=None,
                lease_until=None,
                updated_at=now,
            )
        )
        return True

    async def _one_attempt(self, condition: Any) -> AttemptRecord | None:
        async with self._tx() as conn:
            row = (await conn.execute(select(Attempt).where(condition))).mappings().first()
        return AttemptRecord(**row) if row is not None else None

    async def _count(self, *conditions: Any) -> int:
        async with self._tx() as conn:
            return int(
                await conn.scalar(select(func.count()).select_from(Contact).where(*conditions)) or 0
            )


#: SQLSTATE classes that say the session was refused or lost, not that the statement was wrong:
#: connection exceptions, operator intervention (a shutdown, a terminated backend, a server
#: starting up), too many connections.
_UNREACHABLE_STATES: Final = ("08", "57P", "53300")


def _unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is out of reach for now (retrying later may succeed)
    rather than that a statement was refused (which would fail again the same way).

    PostgreSQL refusing a database (``ALLOW_CONNECTIONS false``) and a backend terminated under a
    pooled connection come through asyncpg as plain DBAPIErrors (or InternalErrors), not as
    OperationalError, so the driver's SQLSTATE and where the error arose decide."""
    if not isinstance(exc, DBAPIError):
        return True  # OSError, a pool or connect timeout
    if isinstance(exc, IntegrityError):
        return False
    if isinstance(exc, (OperationalError, InterfaceError, InternalError)):
        return True
    if exc.connection_invalidated:
        return True
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if isinstance(state, str) and state.startswith(_UNREACHABLE_STATES):
        return True
    # No statement: it arose while connecting (a refused database), committing or rolling back.
    return exc.statement is None


def _unavailable(exc: BaseException) -> DependencyUnavailable:
    # The driver's message can quote the statement and its values (numbers): name the kind only.
    kind = type(exc.orig).__name__ if isinstance(exc, DBAPIError) else type(exc).__name__
    return DependencyUnavailable(f"the dialer's database did not answer ({kind})")


def _utc(moment: datetime) -> datetime:
    """``moment`` told in UTC, as everything the store hands out is."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a naive datetime ({moment.isoformat()}) cannot be stored; use UTC")
    return moment.astimezone(UTC)


def _batches(rows: Iterable[ContactRow], size: int) -> Iterator[list[ContactRow]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def _contact_state(state: str) -> ContactState:
    try:
        return ContactState(state)
    except ValueError:
        names = ", ".join(s.value for s in ContactState)
        raise InvalidInput(f"unknown contact state {state!r}; use one of {names}") from None


def _new_contact(campaign_id: str, row: ContactRow, blocked: bool, now: datetime) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "campaign_id": campaign_id,
        "row": row.row,
        "phone": row.phone,
        "name": row.name,
        "timezone": row.timezone,
        "consent": row.consent,
        "fields": dict(row.fields),
        "state": ContactState.SKIPPED if blocked else ContactState.PENDING,
        "reason": DNC_REASON if blocked else None,
        "outcome": DNC_OUTCOME if blocked else None,
        "attempts": 0,
        "failed_retries": 0,
        "created_at": now,
        "updated_at": now,
    }


def _campaign(row: RowMapping) -> CampaignRecord:
    return CampaignRecord(
        id=row["id"],
        name=row["name"],
        spec=CampaignSpec.model_validate(row["spec"]),
        state=CampaignState(row["state"]),
        reason=row["state_reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


def _contact(row: RowMapping) -> ContactRecord:
    values = dict(row)
    values["state"] = ContactState(values["state"])
    values["fields"] = dict(values["fields"] or {})
    return ContactRecord(**values)
