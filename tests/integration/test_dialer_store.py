"""The dialer's store on a real SQLite file and a real PostgreSQL database: migrations, imports,
claims raced by two replicas, leases, transitions, attempts and the do-not-call list."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import StatementError

from callkit.errors import DependencyUnavailable, InvalidInput, NotFound
from callkit.redis_provision import free_port
from dialer.core.states import CampaignState, ContactState
from dialer.spec import CampaignSpec, ContactRow
from dialer.store import DNC_OUTCOME, DNC_REASON, Claim, Store
from dialer.store.database import alembic_config, current_revision
from dialer.store.schema import Base

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def number(i: int) -> str:
    return f"+1202555{i:04d}"


def rows(*indexes: int, consent: str | None = "form-7") -> list[ContactRow]:
    return [
        ContactRow(
            row=i + 2,
            phone=number(i),
            name=f"Contact {i}",
            timezone="America/New_York",
            consent=consent,
            fields={"visit": f"v{i}"},
        )
        for i in indexes
    ]


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(database_url)
    await opened.migrate()
    try:
        yield opened
    finally:
        await opened.close()


async def running_campaign(store: Store, *indexes: int, name: str = "Flu shots") -> str:
    campaign_id = await store.create_campaign(CampaignSpec(name=name), now=NOW)
    await store.add_contacts(campaign_id, rows(*indexes), now=NOW)
    await store.transition(campaign_id, CampaignState.RUNNING, now=NOW)
    return campaign_id


async def claim_one(store: Store, campaign_id: str, *, now: datetime = NOW) -> Claim:
    (claim,) = await store.claim_due(campaign_id, now=now, limit=1, owner="a", lease_s=60)
    return claim


async def test_migrations_run_from_empty_and_again(database_url: str) -> None:
    first, second = await Store.open(database_url), await Store.open(database_url)
    try:
        await asyncio.gather(first.migrate(), second.migrate())  # two replicas starting
        await first.migrate()  # nothing left to do
        await first.ping()
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        async with first._engine.connect() as conn:
            assert await current_revision(conn) == head
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            drift = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata
                )
            )
        assert tables == {"alembic_version", "campaigns", "contacts", "attempts", "dnc"}
        assert drift == []  # the migrations create exactly what the models describe
    finally:
        await first.close()
        await second.close()


async def test_an_unreachable_database_is_a_dependency_error(
    database_url: str, tmp_path: Path
) -> None:
    if database_url.startswith("sqlite"):
        broken = f"sqlite+aiosqlite:///{tmp_path}"  # a folder, not a database file
    else:
        broken = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere"
    store = await Store.open(broken)
    try:
        with pytest.raises(DependencyUnavailable, match="did not answer"):
            await store.ping()
        with pytest.raises(DependencyUnavailable):
            await store.migrate()
    finally:
        await store.close()
        # aiosqlite reports a failed connect from its worker thread: let it land before this
        # test's event loop closes, or it raises in that thread during a later test.
        await asyncio.sleep(0.2)


async def test_a_campaign_keeps_its_spec_and_imports_skip_duplicates(store: Store) -> None:
    spec = CampaignSpec(name="Recall", timezone="Europe/Moscow", concurrency=7)
    campaign_id = await store.create_campaign(spec, now=NOW)
    record = await store.campaign(campaign_id)
    assert record is not None
    assert record.spec == spec
    assert (record.name, record.state, record.created_at) == ("Recall", CampaignState.DRAFT, NOW)

    twice = rows(0, 1, 2, 3) + rows(1)  # one number twice in the file
    assert await store.add_contacts(campaign_id, twice, now=NOW) == 4
    again = rows(2, 3, 4, 5)  # the file imported again with two new lines
    assert await store.add_contacts(campaign_id, again, now=NOW + MIN) == 2

    contacts = await store.contacts(campaign_id)
    assert [c.phone for c in contacts] == [number(i) for i in range(6)]
    first = contacts[0]
    assert (first.row, first.name, first.timezone, first.consent) == (
        2,
        "Contact 0",
        "America/New_York",
        "form-7",
    )
    assert first.fields == {"visit": "v0"}
    assert (first.state, first.attempts, first.next_attempt_at) == (ContactState.PENDING, 0, None)
    assert await store.remaining(campaign_id) == 6
    assert [c.id for c in await store.campaigns()] == [campaign_id]
    assert await store.campaign("no-such-campaign") is None
    with pytest.raises(NotFound):
        await store.add_contacts("no-such-campaign", rows(9), now=NOW)


async def test_a_large_import_goes_in_batches_and_counts_only_new_rows(store: Store) -> None:
    campaign_id = await store.create_campaign(CampaignSpec(name="Big"), now=NOW)
    big = rows(*range(1200)) + rows(3, 700)  # duplicates after the first batches
    assert await store.add_contacts(campaign_id, iter(big), now=NOW) == 1200
    assert await store.add_contacts(campaign_id, rows(0, 1199, 1200), now=NOW) == 1
    assert (await store.counts(campaign_id))["state"]["pending"] == 1201
    page = await store.contacts(campaign_id, limit=10, offset=1195)
    assert [c.row for c in page] == [1197, 1198, 1199, 1200, 1201, 1202]


async def test_two_replicas_racing_never_claim_one_contact_twice(database_url: str) -> None:
    replicas = [await Store.open(database_url) for _ in range(2)]
    try:
        await replicas[0].migrate()
        campaign_id = await replicas[0].create_campaign(CampaignSpec(name="Race"), now=NOW)
        await replicas[0].add_contacts(campaign_id, rows(*range(50)), now=NOW)
        # A draft campaign hands out nothing.
        assert (
            await replicas[1].claim_due(campaign_id, now=NOW, limit=5, owner="x", lease_s=60) == []
        )
        await replicas[0].transition(campaign_id, CampaignState.RUNNING, now=NOW)

        async def dial_loop(store: Store, owner: str) -> list[Claim]:
            taken: list[Claim] = []
            while batch := await store.claim_due(
                campaign_id, now=NOW, limit=3, owner=owner, lease_s=60
            ):
                taken.extend(batch)
            return taken

        loops = [
            dial_loop(store, f"replica{r}-loop{i}")
            for r, store in enumerate(replicas)
            for i in range(10)
        ]
        claims = [c for taken in await asyncio.gather(*loops) for c in taken]

        contact_ids = [c.contact_id for c in claims]
        assert len(contact_ids) == 50
        assert len(set(contact_ids)) == 50  # every contact exactly once
        assert len({c.attempt_id for c in claims}) == 50
        assert all(c.attempt_number == 1 for c in claims)
        counts = await replicas[1].counts(campaign_id)
        assert counts["state"]["dialing"] == 50
        for claim in claims[:5]:
            contact = await replicas[1].contact(claim.contact_id)
            attempt = await replicas[1].attempt(claim.attempt_id)
            assert contact is not None
            assert attempt is not None
            assert (contact.lease_owner, contact.attempts) == (claim.owner, 1)
            assert contact.lease_until == NOW + timedelta(seconds=60)
            assert (attempt.owner, attempt.number, attempt.started_at) == (claim.owner, 1, NOW)
    finally:
        for store in replicas:
            await store.close()


async def test_due_retries_come_before_new_contacts_and_future_ones_wait(store: Store) -> None:
    campaign_id = await running_campaign(store, 0, 1, 2)
    first = await claim_one(store, campaign_id)
    assert first.phone == number(0)  # file order among new contacts
    await store.finish_attempt(
        first.attempt_id,
        outcome="busy",
        hangup_cause="USER_BUSY",
        next_attempt_at=NOW + 10 * MIN,
        now=NOW,
    )
    later = await store.claim_due(campaign_id, now=NOW + 10 * MIN, limit=1, owner="a", lease_s=60)
    assert [c.phone for c in later] == [number(0)]  # the retry that came due goes first
    assert later[0].attempt_number == 2
    rest = await store.claim_due(campaign_id, now=NOW, limit=10, owner="a", lease_s=60)
    assert [c.phone for c in rest] == [number(1), number(2)]


async def test_leases_expire_and_another_replica_takes_over(store: Store) -> None:
    campaign_id = await running_campaign(store, 0, 1, 2)
    claims = await store.claim_due(campaign_id, now=NOW, limit=2, owner="a", lease_s=30)
    assert await store.mark_answered(claims[1].attempt_id, call_id="chan-1", now=NOW + MIN / 6)

    assert await store.expired_leases(now=NOW + timedelta(seconds=29)) == []
    lapsed = await store.expired_leases(now=NOW + timedelta(seconds=31))
    assert {(c.contact_id, c.attempt_id, c.owner) for c in lapsed} == {
        (c.contact_id, c.attempt_id, "a") for c in claims
    }
    # A contact in a call is not dialled again just because its lease lapsed.
    later = NOW + timedelta(seconds=31)
    others = await store.claim_due(campaign_id, now=later, limit=10, owner="b", lease_s=30)
    assert [c.phone for c in others] == [number(2)]

    assert await store.take_over(claims[0].contact_id, owner="b", lease_s=30, now=later)
    assert not await store.take_over(claims[0].contact_id, owner="c", lease_s=30, now=later)
    assert not await store.extend_lease(claims[0].contact_id, "a", later + MIN)  # not a's now
    assert await store.extend_lease(claims[0].contact_id, "b", later + MIN)
    taken = await store.contact(claims[0].contact_id)
    assert taken is not None
    assert (taken.lease_owner, taken.lease_until, taken.state) == (
        "b",
        later + MIN,
        ContactState.DIALING,
    )
    remaining = await store.expired_leases(now=later + timedelta(seconds=1))
    assert [c.contact_id for c in remaining] == [claims[1].contact_id]  # the answered one
    assert remaining[0].attempt_id == claims[1].attempt_id


async def test_transitions_are_idempotent_and_refused_when_invalid(store: Store) -> None:
    campaign_id = await store.create_campaign(CampaignSpec(name="States"), now=NOW)
    started = await store.transition(campaign_id, CampaignState.RUNNING, now=NOW + MIN)
    assert (started.state, started.started_at) == (CampaignState.RUNNING, NOW + MIN)
    again = await store.transition(campaign_id, CampaignState.RUNNING, now=NOW + 2 * MIN)
    assert again == started  # already running: nothing changed, not even updated_at
    paused = await store.transition(
        campaign_id, CampaignState.PAUSED, reason="trunk failures", now=NOW + 3 * MIN
    )
    assert (paused.state, paused.reason) == (CampaignState.PAUSED, "trunk failures")
    assert [c.id for c in await store.running_campaigns()] == []
    resumed = await store.transition(campaign_id, CampaignState.RUNNING, now=NOW + 4 * MIN)
    assert (resumed.reason, resumed.started_at) == (None, NOW + MIN)  # first start kept
    assert [c.id for c in await store.running_campaigns()] == [campaign_id]
    done = await store.transition(campaign_id, CampaignState.COMPLETED, now=NOW + 5 * MIN)
    assert done.finished_at == NOW + 5 * MIN

    with pytest.raises(InvalidInput, match="from completed to running") as refused:
        await store.transition(campaign_id, CampaignState.RUNNING, now=NOW + 6 * MIN)
    assert refused.value.code == "invalid_transition"
    draft = await store.create_campaign(CampaignSpec(name="Draft"), now=NOW)
    with pytest.raises(InvalidInput, match="from draft to paused"):
        await store.transition(draft, CampaignState.PAUSED, now=NOW)
    with pytest.raises(NotFound):
        await store.transition("no-such-campaign", CampaignState.RUNNING, now=NOW)


async def test_racing_transitions_apply_once(database_url: str) -> None:
    replicas = [await Store.open(database_url) for _ in range(2)]
    try:
        await replicas[0].migrate()
        for replica in replicas:
            await replica.ping()  # both hold a connection, so neither starts late
        for round_ in range(5):
            campaign_id = await replicas[0].create_campaign(CampaignSpec(name="Race"), now=NOW)
            await replicas[0].transition(campaign_id, CampaignState.RUNNING, now=NOW)
            # A pause and a completion at once: whichever lands first makes the other invalid.
            results = await asyncio.gather(
                replicas[round_ % 2].transition(
                    campaign_id, CampaignState.PAUSED, reason="x", now=NOW + MIN
                ),
                replicas[(round_ + 1) % 2].transition(
                    campaign_id, CampaignState.COMPLETED, now=NOW + MIN
                ),
                return_exceptions=True,
            )
            refused = [r for r in results if isinstance(r, InvalidInput)]
            assert len(refused) == 1, results
            assert refused[0].code == "invalid_transition"
    finally:
        for store in replicas:
            await store.close()


async def test_finishing_schedules_a_retry_or_ends_the_contact(store: Store) -> None:
    campaign_id = await running_campaign(store, 0, 1)
    claim = await claim_one(store, campaign_id)
    retry_at = NOW + 15 * MIN
    contact = await store.finish_attempt(
        claim.attempt_id,
        outcome="failed",
        hangup_cause="NORMAL_TEMPORARY_FAILURE",
        next_attempt_at=retry_at,
        now=NOW + MIN,
        failed_retry=True,
    )
    assert (contact.state, contact.next_attempt_at, contact.reason) == (
        ContactState.SCHEDULED,
        retry_at,
        "failed",
    )
    assert (contact.outcome, contact.attempts, contact.failed_retries) == (None, 1, 1)
    assert (contact.lease_owner, contact.lease_until) == (None, None)
    ended = await store.attempt(claim.attempt_id)
    assert ended is not None
    assert (ended.ended_at, ended.outcome, ended.hangup_cause) == (
        NOW + MIN,
        "failed",
        "NORMAL_TEMPORARY_FAILURE",
    )
    # The same hangup reported twice changes nothing.
    repeated = await store.finish_attempt(
        claim.attempt_id, outcome="no_answer", hangup_cause=None, next_attempt_at=None, now=NOW
    )
    assert repeated == contact

    second = await claim_one(store, campaign_id, now=retry_at)
    assert (second.contact_id, second.attempt_number) == (claim.contact_id, 2)
    assert await store.mark_answered(second.attempt_id, call_id="chan-2", now=retry_at)
    assert not await store.mark_answered(second.attempt_id, call_id="chan-2", now=retry_at)
    in_call = await store.contact(second.contact_id)
    assert in_call is not None
    assert in_call.state == ContactState.IN_CALL
    by_call = await store.attempt_by_call("chan-2")
    assert by_call is not None
    assert (by_call.id, by_call.answered_at) == (second.attempt_id, retry_at)
    final = await store.finish_attempt(
        second.attempt_id,
        outcome="booked",
        hangup_cause="NORMAL_CLEARING",
        next_attempt_at=None,
        now=retry_at + 3 * MIN,
    )
    assert (final.state, final.outcome, final.attempts, final.next_attempt_at) == (
        ContactState.DONE,
        "booked",
        2,
        None,
    )
    assert (
        await store.claim_due(campaign_id, now=NOW + 60 * MIN, limit=5, owner="a", lease_s=60) != []
    )
    assert await store.remaining(campaign_id) == 1  # the other contact, now dialing
    with pytest.raises(NotFound):
        await store.finish_attempt(
            "no-such-attempt", outcome="busy", hangup_cause=None, next_attempt_at=None, now=NOW
        )


async def test_a_released_claim_costs_no_attempt(store: Store) -> None:
    campaign_id = await running_campaign(store, 0, 1)
    claim = await claim_one(store, campaign_id)
    opens = NOW + 600 * MIN
    assert await store.release(claim, opens, "outside the calling hours", now=NOW)
    assert not await store.release(claim, opens, "outside the calling hours", now=NOW)
    assert await store.attempt(claim.attempt_id) is None
    contact = await store.contact(claim.contact_id)
    assert contact is not None
    assert (contact.state, contact.attempts, contact.next_attempt_at, contact.reason) == (
        ContactState.SCHEDULED,
        0,
        opens,
        "outside the calling hours",
    )
    assert contact.lease_owner is None

    # An answered call cannot be given back.
    other = await claim_one(store, campaign_id)
    await store.mark_answered(other.attempt_id, call_id="chan-9", now=NOW)
    assert not await store.release(other, opens, "too late", now=NOW)
    assert not await store.defer(other.contact_id, until=opens, reason="too late", now=NOW)

    # defer: a waiting contact moves; a claimed one is released whoever holds it.
    assert await store.defer(claim.contact_id, until=NOW + 5 * MIN, reason="cap", now=NOW)
    again = await claim_one(store, campaign_id, now=NOW + 5 * MIN)
    assert again.attempt_number == 1
    assert await store.defer(again.contact_id, until=NOW + 9 * MIN, reason="cap", now=NOW)
    assert await store.attempt(again.attempt_id) is None
    deferred = await store.contact(again.contact_id)
    assert deferred is not None
    assert (deferred.state, deferred.attempts, deferred.next_attempt_at) == (
        ContactState.SCHEDULED,
        0,
        NOW + 9 * MIN,
    )


async def test_attempts_for_a_number_span_campaigns(store: Store) -> None:
    spring = await running_campaign(store, 0, name="Spring")
    autumn = await running_campaign(store, 0, 1, name="Autumn")
    one = await claim_one(store, spring, now=NOW)
    two = await store.claim_due(autumn, now=NOW + 60 * MIN, limit=1, owner="a", lease_s=60)
    assert two[0].phone == one.phone
    seen = await store.attempts_for_number(number(0), since=NOW - 24 * 60 * MIN)
    assert seen == [NOW, NOW + 60 * MIN]
    assert all(t.tzinfo is UTC for t in seen)
    assert await store.attempts_for_number(number(0), since=NOW + MIN) == [NOW + 60 * MIN]
    assert await store.attempts_for_number(
        number(0), since=NOW - MIN, exclude=two[0].attempt_id
    ) == [NOW]
    assert await store.attempts_for_number(number(1), since=NOW - MIN) == []


async def test_do_not_call_at_import_and_added_later(store: Store) -> None:
    assert await store.add_dnc(number(0), source="api", now=NOW)
    assert not await store.add_dnc(number(0), source="opt-out", now=NOW + MIN)
    assert await store.is_dnc(number(0))
    assert not await store.is_dnc(number(1))

    first = await running_campaign(store, 0, 1, 2, name="First")
    second = await running_campaign(store, 1, 2, name="Second")
    blocked = (await store.contacts(first, state="skipped"))[0]
    assert (blocked.phone, blocked.reason, blocked.outcome) == (
        number(0),
        DNC_REASON,
        DNC_OUTCOME,
    )
    dialing = await claim_one(store, first)  # number 1, now in progress
    assert dialing.phone == number(1)

    # The callee of number 1 and 2 opts out: their waiting contacts everywhere are skipped.
    assert await store.add_dnc(number(1), source="opt-out", now=NOW + 2 * MIN)
    assert await store.add_dnc(number(2), source="api", now=NOW + 3 * MIN)
    assert (await store.counts(first))["state"]["skipped"] == 2  # numbers 0 and 2
    assert (await store.counts(second))["state"]["skipped"] == 2
    in_progress = await store.contact(dialing.contact_id)
    assert in_progress is not None
    assert in_progress.state == ContactState.DIALING  # a call under way is left to finish
    assert await store.claim_due(second, now=NOW, limit=10, owner="a", lease_s=60) == []
    assert await store.remaining(second) == 0

    assert await store.dnc() == [
        (number(2), NOW + 3 * MIN, "api"),
        (number(1), NOW + 2 * MIN, "opt-out"),
        (number(0), NOW, "api"),
    ]
    assert await store.dnc(limit=1, offset=1) == [(number(1), NOW + 2 * MIN, "opt-out")]
    assert await store.remove_dnc(number(0))
    assert not await store.remove_dnc(number(0))
    assert not await store.is_dnc(number(0))


async def test_counts_by_state_and_outcome(store: Store) -> None:
    campaign_id = await store.create_campaign(CampaignSpec(name="Counts"), now=NOW)
    await store.add_contacts(campaign_id, rows(0, 1, 2, 3) + rows(4, 5, consent=None), now=NOW)
    await store.add_dnc(number(5), source="api", now=NOW)
    await store.transition(campaign_id, CampaignState.RUNNING, now=NOW)
    claims = await store.claim_due(campaign_id, now=NOW, limit=4, owner="a", lease_s=60)
    outcomes = [("booked", None), ("declined", None), ("busy", NOW + 10 * MIN)]
    for claim, (outcome, retry_at) in zip(claims, outcomes, strict=False):
        await store.finish_attempt(
            claim.attempt_id, outcome=outcome, hangup_cause=None, next_attempt_at=retry_at, now=NOW
        )
    assert await store.counts(campaign_id) == {
        "state": {
            "pending": 1,
            "dialing": 1,
            "in_call": 0,
            "scheduled": 1,
            "done": 2,
            "skipped": 1,
        },
        "outcome": {"booked": 1, "declined": 1, "skipped_dnc": 1},
    }
    assert await store.remaining(campaign_id) == 3
    assert await store.contacts_without_consent(campaign_id) == 1  # the other one is skipped
    assert [c.phone for c in await store.contacts(campaign_id, state="done")] == [
        number(0),
        number(1),
    ]
    with pytest.raises(InvalidInput, match="unknown contact state"):
        await store.contacts(campaign_id, state="ringing")
    assert await store.counts("no-such-campaign") == {
        "state": {s.value: 0 for s in ContactState},
        "outcome": {},
    }


async def test_datetimes_come_back_aware_in_utc(store: Store, database_url: str) -> None:
    moscow = timezone(timedelta(hours=3))
    local = datetime(2026, 12, 1, 12, 30, 15, 123456, tzinfo=moscow)
    campaign_id = await store.create_campaign(CampaignSpec(name="Zones"), now=local)
    record = await store.campaign(campaign_id)
    assert record is not None
    assert record.created_at == local
    assert record.created_at.tzinfo is UTC
    assert record.created_at.hour == 9  # the same instant, told in UTC

    await store.add_contacts(campaign_id, rows(0), now=local)
    await store.transition(campaign_id, CampaignState.RUNNING, now=local)
    claim = await claim_one(store, campaign_id, now=local)
    assert claim.lease_until == local + timedelta(seconds=60)
    assert claim.lease_until.tzinfo is UTC
    (lapsed,) = await store.expired_leases(now=local + 2 * MIN)
    assert lapsed.lease_until == claim.lease_until

    async with store._engine.connect() as conn:
        stored = await conn.scalar(
            text("SELECT created_at FROM campaigns WHERE id = :id"), {"id": campaign_id}
        )
    if database_url.startswith("sqlite"):
        assert str(stored) == "2026-12-01 09:30:15.123456"  # the UTC wall time, in one format
    else:
        assert stored == local

    naive = datetime(2026, 12, 1, 9, 0)
    with pytest.raises(StatementError, match="naive datetime"):
        await store.create_campaign(CampaignSpec(name="Naive"), now=naive)
