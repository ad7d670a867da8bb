"""The dialer's loop: claim due contacts, check them at dial time, originate, finish attempts.

Every replica runs the same loop; nothing assumes it is alone:

- a contact is claimed in the database with a lease (``Store.claim_due``), so two replicas never
  get the same one, and a replica killed mid-call loses nothing: its leases lapse and another
  replica takes the contacts over (``_recover``);
- before ``originate`` the claim is checked again where it matters, at dial time: the
  do-not-call list, the calling window in the contact's own local time, the frequency caps
  across campaigns; then a call slot of the campaign and the number's one-call lock are taken
  in Redis, and the trunk's rate bucket is waited on;
- the channel's uuid is the attempt's id (``origination_uuid``), so the call can always be
  found again on the switch (``uuid_exists``): an originate whose result was lost (a dropped
  Event Socket, a dead replica) is looked up, never redialled blindly;
- unanswered attempts end with the originate's cause (:mod:`dialer.core.causes`); answered ones
  with the dialog's outcome from ``calls:completed``; each finished contact gets one outcome
  entry of its own (``contact:{id}``) for the sales sheet;
- a caller who rang in and asked to be called back becomes a contact of the standing callbacks
  campaign of their language (:mod:`dialer.core.callbacks`), created by whichever replica needs
  it first, and is dialled like any contact when the moment they asked for comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from callkit.contracts import outcome as outcomes
from callkit.contracts.campaign import CampaignCall, call_key
from callkit.contracts.load import parse_value as parse_load
from callkit.contracts.streams import BRIDGE_PREFIX, CALLS_COMPLETED, key
from callkit.errors import AgentError, InvalidInput
from callkit.esl import Event
from dialer.core import callbacks, causes, retry
from dialer.core.breaker import AbandonTracker, TrunkBreaker, agent_heard_after_ms, is_abandoned
from dialer.core.caps import cap_allows
from dialer.core.compliance import effective_windows
from dialer.core.pacing import agent_capacity_budget, dial_budget
from dialer.core.states import CampaignState, ContactState
from dialer.core.windows import is_open, next_open, zone
from dialer.importer import normalize_number
from dialer.live import LiveState
from dialer.spec import CampaignSpec
from dialer.store import Store
from dialer.store.records import CampaignRecord, Claim, ContactRecord

log = logging.getLogger("dialer.engine")
CONTACT_ROW_PREFIX = "contact:"
#: What a dependency that went away raises (the store's DependencyUnavailable is an AgentError).
DEPENDENCY_ERRORS = (RedisError, OSError, AgentError)


class Switch(Protocol):
    """What the dialer needs of FreeSWITCH's Event Socket (``callkit.esl_client.EslClient``)."""

    connected: asyncio.Event

    async def api(self, command: str) -> str: ...

    async def originate(self, url_with_vars: str, target: str, *, timeout_s: float) -> str: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class EngineConfig:
    replica: str
    dialplan_target: str = "outbound XML agent"
    tick_s: float = 0.5
    lease_s: float = 60.0
    max_call_s: float = 900.0
    outcome_wait_s: float = 120.0
    completed_stream: str = CALLS_COMPLETED
    group: str = "dialer"
    #: The bridges' load keys (``bridge:{replica}:load``), read before each claim.
    bridge_loads: str = key(BRIDGE_PREFIX, "*", "load")
    default_region: str = "US"
    #: The language of callbacks whose outcome does not say the caller's.
    callback_locale: str = "en"
    #: The zone of callback numbers that phonenumbers cannot place in one.
    callback_timezone: str = "UTC"
    #: How long a call's own task keeps retrying what an outage interrupted (giving back a
    #: claim whose call did not go out, storing how a call ended) before it leaves the contact
    #: to recovery, which then finishes it from what the database and the switch say.
    hold_s: float = 300.0


@dataclass
class InFlight:
    campaign_id: str
    contact_id: str
    attempt_id: str
    phone: str
    answered_at: float | None = None  # monotonic
    hung_up_at: float | None = None
    hangup_cause: str | None = None
    task: asyncio.Task[None] | None = None


@dataclass
class Leftover:
    """What an attempt that is over still owes Redis: its call slot and number lock, and the
    sheet row of its contact when the attempt was the last. Kept and retried every tick while
    Redis refuses it, so a number is never left locked nor a row unwritten until the keys lapse."""

    campaign_id: str
    attempt_id: str
    phone: str
    row: tuple[ContactRecord, CampaignSpec, datetime] | None = None
    freed: bool = False


@dataclass
class CampaignHealth:
    breaker: TrunkBreaker = field(default_factory=TrunkBreaker)
    abandon: AbandonTracker = field(default_factory=AbandonTracker)


def originate_leg(spec: CampaignSpec, claim: Claim, *, campaign_id: str) -> str:
    """``{vars}sofia/gateway/<trunk>/<number>``: the leg ``originate`` places.

    Every value is one the dialer made (uuids, digits, a validated trunk name), so none can carry
    a comma, a brace or a line break into the variable block."""
    variables = {
        "origination_uuid": claim.attempt_id,
        "originate_timeout": str(spec.originate_timeout_s),
        "campaign_id": campaign_id,
        "contact_id": claim.contact_id,
        "attempt_id": claim.attempt_id,
        "call_direction": "outbound",
        "agent_language": spec.locale,
        "ignore_early_media": "true",
    }
    if spec.caller_id:
        variables["origination_caller_id_number"] = spec.caller_id
    block = ",".join(f"{k}={v}" for k, v in variables.items())
    return f"{{{block}}}sofia/gateway/{spec.trunk}/{claim.phone}"


class Dialer:
    def __init__(
        self,
        config: EngineConfig,
        store: Store,
        redis: Redis,
        switch: Switch,
        *,
        clock: Callable[[], datetime] = utcnow,
        metrics: Any = None,
    ) -> None:
        self.config = config
        self.store = store
        self.redis = redis
        self.live = LiveState(redis)
        self.switch = switch
        self.clock = clock
        self.metrics = metrics
        self.in_flight: dict[str, InFlight] = {}
        self.health: dict[str, CampaignHealth] = {}
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.originates = 0
        #: The same time as a Prometheus histogram (``dialer_originate_prepare_seconds``).
        self.prepare_seconds: Any = None
        self._loads: tuple[float, list[tuple[int, int]]] | None = None  # (monotonic, loads)
        #: Attempts over whose Redis keys or sheet row could not be dealt with yet.
        self.leftovers: dict[str, Leftover] = {}
        self._holding = False  # a tick failed on a dependency and none has succeeded since

    # ------------------------------------------------------------------ loop

    async def run(self) -> None:
        consumer = asyncio.create_task(self._consume_outcomes(), name="dialer-outcomes")
        try:
            while not self._stopping.is_set():
                try:
                    await self.tick()
                except DEPENDENCY_ERRORS as exc:
                    # A dependency went away: hold, and carry on when it is back. Nothing is
                    # lost: contacts stay claimed by lease, slots and locks expire. Said once
                    # per outage, not once per tick.
                    if not self._holding:
                        log.warning("dialer tick failed; holding", extra={"error": _said(exc)})
                    self._holding = True
                except Exception:
                    log.exception("dialer tick failed")
                else:
                    if self._holding:
                        log.info("dialer carries on")
                    self._holding = False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.config.tick_s)
        finally:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer

    def stop(self) -> None:
        self._stopping.set()

    async def drain(self, timeout_s: float = 5.0) -> None:
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout_s)

    async def tick(self) -> None:
        now = self.clock()
        await self._settle_leftovers()
        await self._renew(now)
        await self._recover(now)
        for campaign in await self.store.running_campaigns():
            await self._campaign_tick(campaign, now)

    def _health(self, campaign_id: str) -> CampaignHealth:
        return self.health.setdefault(campaign_id, CampaignHealth())

    async def _campaign_tick(self, campaign: CampaignRecord, now: datetime) -> None:
        spec: CampaignSpec = campaign.spec
        health = self._health(campaign.id)
        reason = health.breaker.reason(time.monotonic()) or health.abandon.reason
        if reason is not None:
            log.warning("campaign paused itself", extra={"campaign_id": campaign.id})
            await self.store.transition(campaign.id, CampaignState.PAUSED, reason=reason, now=now)
            self.health.pop(campaign.id, None)
            return
        if not self.switch.connected.is_set():
            return  # no originates while the Event Socket is down; resumes on reconnect
        active = await self.live.active(campaign.id, now=now.timestamp())
        budget = dial_budget(concurrency=spec.concurrency, active=active, due=spec.concurrency)
        if budget > 0:
            # While the agent is full, answered calls would only hear the busy phrase: hold.
            ringing = sum(
                1 for f in self.in_flight.values() if f.answered_at is None and f.hung_up_at is None
            )
            budget = agent_capacity_budget(await self._bridge_loads(), budget, pending=ringing)
        if budget <= 0:
            return
        claims = await self.store.claim_due(
            campaign.id,
            now=now,
            limit=budget,
            owner=self.config.replica,
            lease_s=self.config.lease_s,
        )
        if not claims:
            if callbacks.is_standing(campaign.id, spec):
                return  # it stands for the next callback: never completed
            if active == 0 and await self.store.remaining(campaign.id) == 0:
                await self._skipped_rows(campaign, now)
                await self.store.transition(campaign.id, CampaignState.COMPLETED, now=now)
            return
        for i, claim in enumerate(claims):
            try:
                await self._prepare(campaign, claim, now)
            except Exception:
                # The claims this tick did not get to dial are given back at once (as far as
                # the outage allows; recovery does the rest when their leases lapse), so their
                # contacts neither wait in dialing nor keep a number locked.
                for left in claims[i:]:
                    await self._give_back(left, reason="not dialled: a dependency failed")
                raise

    async def _bridge_loads(self) -> list[tuple[int, int]]:
        """Each reporting bridge's ``(active, max)``; a value that is not the bridge's
        ``{"active": n, "max": m}`` is left out. The campaigns of one tick share one read."""
        started = time.monotonic()
        if self._loads is not None and started - self._loads[0] < self.config.tick_s / 2:
            return self._loads[1]
        keys = [k async for k in self.redis.scan_iter(match=self.config.bridge_loads, count=500)]
        loads: list[tuple[int, int]] = []
        for raw in await self.redis.mget(keys) if keys else []:
            if raw is None:
                continue  # expired between the scan and the read
            value = parse_load(raw)
            if value is not None:
                loads.append((value.active, value.max))
        self._loads = (started, loads)
        return loads

    # ------------------------------------------------------------------ dial-time checks

    async def _prepare(self, campaign: CampaignRecord, claim: Claim, now: datetime) -> None:
        started = time.perf_counter()
        spec: CampaignSpec = campaign.spec
        if await self.store.is_dnc(claim.phone):
            await self._finish(claim.attempt_id, "skipped_dnc", None, None, now)
            return
        try:
            tz = zone(claim.timezone or spec.timezone)
        except InvalidInput:
            tz = zone(spec.timezone)
        windows = effective_windows(spec.windows, spec.profile, years=(now.year, now.year + 1))
        if not is_open(windows, tz, now):
            opens = next_open(windows, tz, now)
            await self.store.release(
                claim,
                until=opens or now + timedelta(days=1),
                reason="outside the calling hours in the contact's local time",
                now=now,
            )
            return
        past = await self.store.attempts_for_number(
            claim.phone, since=now - timedelta(days=31), exclude=claim.attempt_id
        )
        allowed = cap_allows(spec.caps, past, now)
        if allowed is not None:
            await self.store.release(
                claim, until=allowed, reason="frequency cap for this number", now=now
            )
            return
        hold = self.config.max_call_s + spec.originate_timeout_s
        if not await self.live.hold_number(claim.phone, claim.attempt_id, ttl_s=hold):
            await self.store.release(
                claim,
                until=now + timedelta(seconds=60),
                reason="the number is in another call",
                now=now,
            )
            return
        slot_until = now.timestamp() + spec.originate_timeout_s + self.config.lease_s
        if not await self.live.reserve_slot(
            campaign.id,
            claim.attempt_id,
            cap=spec.concurrency,
            now=now.timestamp(),
            hold_s=slot_until - now.timestamp(),
        ):
            await self.live.release_number(claim.phone, claim.attempt_id)
            await self.store.release(
                claim, until=now + timedelta(seconds=1), reason="no free call slot", now=now
            )
            return
        flight = InFlight(campaign.id, claim.contact_id, claim.attempt_id, claim.phone)
        self.in_flight[claim.attempt_id] = flight
        leg = originate_leg(spec, claim, campaign_id=campaign.id)
        prepared_s = time.perf_counter() - started
        if self.prepare_seconds is not None:
            self.prepare_seconds.observe(prepared_s)
        task = asyncio.create_task(self._dial(campaign, claim, leg), name="dialer-originate")
        flight.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dial(self, campaign: CampaignRecord, claim: Claim, leg: str) -> None:
        spec: CampaignSpec = campaign.spec
        try:
            current = await self._turn(campaign)
            if self._stopping.is_set() or current is None or current.state != CampaignState.RUNNING:
                # Paused or cancelled while this call waited for the trunk (or the dialer is
                # stopping): it does not go out, and the claim costs the contact nothing.
                await self._give_back(
                    claim,
                    reason="dialer stopped"
                    if self._stopping.is_set()
                    else f"campaign {current.state if current else 'gone'}",
                    retry=True,
                )
                return
            context = CampaignCall(
                call_id=claim.attempt_id,
                campaign_id=campaign.id,
                contact_id=claim.contact_id,
                attempt=claim.attempt_number,
                campaign_name=spec.name,
                purpose=spec.purpose.value,
                locale=spec.locale,
                phone=claim.phone,
                name=claim.name,
                fields=claim.fields,
                on_voicemail=spec.on_voicemail,
            )
            # The agent's context goes first: once mark_dialing is stored the attempt counts as
            # dialled, so nothing that can fail may come between it and the originate.
            await self.redis.set(
                call_key(claim.attempt_id),
                context.model_dump_json(),
                ex=int(self.config.max_call_s + spec.originate_timeout_s),
            )
            marked = await self.store.mark_dialing(claim.attempt_id, call_id=claim.attempt_id)
        except Exception as exc:
            # The database or Redis went away before the call went out (mark_dialing's reply may
            # have been lost after it was stored: the originate is known not to have gone out,
            # so the attempt is given back all the same).
            _warn("call not placed; its claim is given back", exc, claim.attempt_id)
            await self._give_back(
                claim,
                reason="not dialled: a dependency failed",
                unsent_call=claim.attempt_id,
                retry=True,
            )
            return
        if not marked:
            # Taken over meanwhile (this replica stalled past its lease): the replica that has
            # the contact now gives it back; what this one holds for the attempt is freed.
            self.in_flight.pop(claim.attempt_id, None)
            await self._settle(Leftover(campaign.id, claim.attempt_id, claim.phone))
            return
        self.originates += 1
        if self.metrics is not None:
            self.metrics.inc()
        try:
            reply = await self.switch.originate(
                leg, self.config.dialplan_target, timeout_s=spec.originate_timeout_s + 15
            )
        except (AgentError, TimeoutError) as exc:
            # The result is unknown (the socket dropped, no reply in time): the call may be
            # ringing. The lease stays; recovery looks the channel up before anything is
            # dialled again.
            log.warning(
                "originate result unknown; the switch will be asked",
                extra={
                    "attempt_id": claim.attempt_id,
                    "error": exc.message if isinstance(exc, AgentError) else "no result in time",
                },
            )
            # Its lease is no longer renewed: once it lapses, recovery (on any replica) asks
            # the switch for the channel and follows it, or finishes the attempt.
            self.in_flight.pop(claim.attempt_id, None)
            return
        now = self.clock()
        health = self._health(campaign.id)
        if reply.startswith("+OK"):
            health.breaker.record(time.monotonic(), failed=False)
            flight = self.in_flight.get(claim.attempt_id)
            if flight is not None and flight.answered_at is None:
                flight.answered_at = time.monotonic()
            await self._retrying(
                "recording the answer",
                claim.attempt_id,
                lambda: self.store.mark_answered(
                    claim.attempt_id, call_id=claim.attempt_id, now=now
                ),
            )
            return  # the dialog's outcome finishes it
        cause = reply.removeprefix("-ERR").strip().split(" ")[0] or "UNKNOWN"
        health.breaker.record(time.monotonic(), failed=causes.is_trunk_failure(cause))
        # The cause is known only here: an outage does not lose it, the attempt is stored when
        # the database answers again.
        stored = await self._retrying(
            "storing how the call ended",
            claim.attempt_id,
            lambda: self._finish(
                claim.attempt_id, causes.outcome_for_cause(cause), cause, spec, now
            ),
        )
        if not stored:
            # Its lease is no longer renewed: recovery finishes the attempt once it lapses.
            self.in_flight.pop(claim.attempt_id, None)

    async def _turn(self, campaign: CampaignRecord) -> CampaignRecord | None:
        """Wait for the trunk's rate bucket, shared by every replica (or for the dialer to
        stop, in which case the call does not go out); then the campaign as it is now."""
        spec: CampaignSpec = campaign.spec
        while not self._stopping.is_set():
            wait = await self.live.rate_wait(spec.trunk, calls_per_second=spec.calls_per_second)
            if wait <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), min(wait, 5.0))
        return await self.store.campaign(campaign.id)

    async def _give_back(
        self,
        claim: Claim,
        *,
        reason: str,
        unsent_call: str | None = None,
        retry: bool = False,
    ) -> None:
        """A claim whose call did not go out: its slot and number lock are freed, then the
        contact is due again at once, at no cost to its attempts.

        With ``retry`` the database is asked again through an outage, up to ``hold_s``, while
        the claim stays in flight (its lease renewed, so no replica takes it over meanwhile);
        without, or once given up, the lapsed lease lets recovery give the claim back."""
        # Redis first: the contact may be claimed again as soon as the database has it back.
        await self._settle(Leftover(claim.campaign_id, claim.attempt_id, claim.phone))

        async def release() -> None:
            now = self.clock()
            await self.store.release(
                claim, until=now, reason=reason, now=now, unsent_call=unsent_call
            )

        if retry:
            await self._retrying("giving a claim back", claim.attempt_id, release)
        else:
            try:
                await release()
            except Exception as exc:
                _warn("giving a claim back failed; recovery will", exc, claim.attempt_id)
        self.in_flight.pop(claim.attempt_id, None)

    async def _retrying(
        self, what: str, attempt_id: str, step: Callable[[], Awaitable[object]]
    ) -> bool:
        """Run ``step`` until it succeeds, backing off (with jitter) while it fails; False when
        ``hold_s`` passed or the dialer is stopping first. Said once when it first fails."""
        deadline = time.monotonic() + self.config.hold_s
        failures = 0
        while True:
            try:
                await step()
            except Exception as exc:
                if failures == 0:
                    _warn(f"{what} failed; retrying", exc, attempt_id)
                failures += 1
                if self._stopping.is_set() or time.monotonic() >= deadline:
                    log.warning("%s given up", what, extra={"attempt_id": attempt_id})
                    return False
                await self._pause(failures)
            else:
                if failures:
                    log.info(
                        "%s done after %d failure(s)",
                        what,
                        failures,
                        extra={"attempt_id": attempt_id},
                    )
                return True

    async def _pause(self, failures: int) -> None:
        """Back off after ``failures`` failures in a row: 0.2 s doubling up to 5 s, jittered so
        the calls of an outage do not all come back at once; cut short when the dialer stops."""
        delay = min(5.0, 0.2 * 2 ** min(failures - 1, 5)) * random.uniform(0.5, 1.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)

    # ------------------------------------------------------------------ finishing

    async def _finish(
        self,
        attempt_id: str,
        status: str,
        cause: str | None,
        spec: CampaignSpec | None,
        now: datetime,
        *,
        callback_at: datetime | None = None,
        first_audio_ms: float | None = None,
        machine: bool = False,
    ) -> None:
        attempt = await self.store.attempt(attempt_id)
        if attempt is None or attempt.ended_at is not None:
            return  # finished already (its reply and its hang-up both report the end)
        contact = await self.store.contact(attempt.contact_id)
        if spec is None:
            campaign = await self.store.campaign(attempt.campaign_id)
            if campaign is None:  # the foreign key keeps it; nothing to decide without it
                log.error("attempt of an unknown campaign", extra={"attempt_id": attempt_id})
                return
            spec = campaign.spec
        failed_retry = status == "failed"
        attempts = contact.attempts if contact is not None else 1
        before = 0  # attempts of an earlier request, which the budget does not count
        if contact is not None and callbacks.is_standing(attempt.campaign_id, spec):
            before = callbacks.attempts_before(contact.fields)
            attempts = callbacks.attempts_spent(attempts, contact.fields)
        asked = 0
        if attempts >= spec.retry.max_attempts:
            # Past the plain budget only the callee's own callback requests keep the contact,
            # in its own campaign: its purpose, rules, consent and fields are what was agreed.
            asked = await self.store.callbacks_asked(attempt.contact_id, after=before)
        next_at = retry.next_attempt(
            spec.retry,
            status,
            attempts=attempts,
            failed_retries=contact.failed_retries if contact is not None else 0,
            now=now,
            callbacks_before=asked,
        )
        if status == "callback" and callback_at is not None and next_at is not None:
            next_at = max(callback_at, now)
        if status == "opt_out":
            await self.store.add_dnc(attempt.phone, source="opt-out", now=now)
        finished = await self.store.finish_attempt(
            attempt_id,
            outcome=status,
            hangup_cause=cause,
            next_attempt_at=next_at,
            now=now,
            failed_retry=failed_retry,
        )
        # Stored: from here on nothing may fail the finish (a retry would find the attempt
        # ended and do nothing), so what Redis refuses is kept for later by _settle.
        flight = self.in_flight.pop(attempt_id, None)
        if flight is not None and flight.answered_at is not None and not machine:
            # The rule is about people: a call an answering machine took is never abandoned.
            self._health(attempt.campaign_id).abandon.record(
                answered=True,
                abandoned=is_abandoned(
                    first_audio_after_s=None if first_audio_ms is None else first_audio_ms / 1000,
                    agent_dropped=status == "failed",
                ),
            )
        row = None
        if finished is not None and finished.state in (ContactState.DONE, ContactState.SKIPPED):
            row = (finished, spec, now)
        await self._settle(Leftover(attempt.campaign_id, attempt_id, attempt.phone, row))

    async def _settle(self, left: Leftover) -> bool:
        """Free an attempt's slot and number lock and write its contact's row; what Redis
        refuses now is kept in ``leftovers`` and retried every tick. True when all is done."""
        try:
            if not left.freed:
                await self.live.release_slot(left.campaign_id, left.attempt_id)
                await self.live.release_number(left.phone, left.attempt_id)
                left.freed = True
            if left.row is not None:
                await self._contact_row(left.row[0], left.row[1], left.campaign_id, left.row[2])
                left.row = None
        except DEPENDENCY_ERRORS as exc:
            if left.attempt_id not in self.leftovers:
                _warn(
                    "freeing an ended attempt's keys failed; kept for later", exc, left.attempt_id
                )
            self.leftovers[left.attempt_id] = left
            return False
        self.leftovers.pop(left.attempt_id, None)
        return True

    async def _settle_leftovers(self) -> None:
        for left in list(self.leftovers.values()):
            if not await self._settle(left):
                return  # Redis is still away; the next tick tries again

    async def _skipped_rows(self, campaign: CampaignRecord, now: datetime) -> None:
        """Rows for the contacts the list skipped without a call (do-not-call at import or
        added later): they never reach ``_finish``. A replica repeating this writes nothing
        twice: the notifier keeps one row per id."""
        offset = 0
        while batch := await self.store.contacts(
            campaign.id, state=ContactState.SKIPPED, limit=500, offset=offset
        ):
            for contact in batch:
                if contact.attempts == 0:
                    await self._contact_row(contact, campaign.spec, campaign.id, now)
            offset += len(batch)

    async def _contact_row(
        self, contact: ContactRecord, spec: CampaignSpec, campaign_id: str, now: datetime
    ) -> None:
        """The sales sheet's one row for a finished contact (the notifier writes it once).

        A callbacks contact is finished once per request, so its rows are told apart by the
        attempts it had made by then."""
        status = contact.outcome or "failed"
        attempts = contact.attempts
        row_id = f"{CONTACT_ROW_PREFIX}{contact.id}"
        if callbacks.is_standing(campaign_id, spec):
            attempts = callbacks.attempts_spent(contact.attempts, contact.fields)
            row_id = f"{row_id}:{contact.attempts}"
        row = outcomes.CallOutcome(
            call_id=row_id,
            direction="outbound",
            campaign_id=campaign_id,
            callee=contact.phone,
            started_at=contact.created_at,
            ended_at=now,
            duration_s=0,
            status=status,
            slots=outcomes.Slots(client_name=contact.name, phone=contact.phone),
            summary=f"campaign {spec.name}: {status} after {attempts} attempt(s)",
            attempts=attempts,
        )
        await self.redis.xadd(self.config.completed_stream, outcomes.entry(row))  # type: ignore[arg-type]

    # ------------------------------------------------------------------ answered calls

    def on_event(self, event: Event) -> None:
        """Event Socket events of the dialer's own channels (those with an ``attempt_id``)."""
        attempt_id = event.get("variable_attempt_id")
        if not attempt_id:
            return
        flight = self.in_flight.get(attempt_id)
        if event.name == "CHANNEL_ANSWER" and flight is not None and flight.answered_at is None:
            flight.answered_at = time.monotonic()
        elif event.name == "CHANNEL_HANGUP_COMPLETE" and flight is not None:
            flight.hung_up_at = time.monotonic()
            flight.hangup_cause = event.get("Hangup-Cause")
            # Answered before this replica took the call over, no CHANNEL_ANSWER came to it:
            # the hang-up says so itself, and the dialog's outcome finishes the attempt.
            answered = (event.get("Caller-Channel-Answered-Time") or "0") not in ("", "0")
            if answered and flight.answered_at is None:
                flight.answered_at = flight.hung_up_at
            if flight.answered_at is None and flight.task is None:
                # A ringing call this replica took over from a stopped one: the originate's
                # reply went to that replica, the cause comes with the hang-up.
                cause = flight.hangup_cause or "UNKNOWN"
                now = self.clock()
                task = asyncio.get_running_loop().create_task(
                    self._retrying(
                        "storing how the call ended",
                        attempt_id,
                        lambda: self._finish(
                            attempt_id, causes.outcome_for_cause(cause), cause, None, now
                        ),
                    )
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _consume_outcomes(self) -> None:
        """Apply the outcomes on ``calls:completed``, for as long as the dialer runs.

        Nothing stops it: an entry that could not be applied (the database or Redis away) stays
        pending, and once the reader has backed off it reads its own pending entries again
        before new ones, so an answered call's outcome is applied as soon as the database is
        back, not left for the attempt to end as failed. An entry that keeps failing on
        something else is left pending after a few tries (the stream's redelivery hands it
        back every 30 s) so that it cannot hold up the outcomes behind it."""
        stream, group = self.config.completed_stream, self.config.group
        grouped = False
        backlog = True  # this consumer's own pending entries first (a restart's among them)
        failures = 0
        stuck: dict[Any, int] = {}  # entry id -> failures not caused by a dependency
        while not self._stopping.is_set():
            applying = None
            try:
                if not grouped:
                    with contextlib.suppress(ResponseError):
                        # From the start of the stream: an opt-out written before the first
                        # dialer ran still reaches the do-not-call list (applying an outcome
                        # twice changes nothing).
                        await self.redis.xgroup_create(stream, group, id="0", mkstream=True)
                    grouped = True
                claimed: Any = await self.redis.xautoclaim(
                    stream, group, self.config.replica, min_idle_time=30_000, count=50
                )
                entries = list(claimed[1]) if claimed else []
                if backlog:
                    read: Any = await self.redis.xreadgroup(
                        group, self.config.replica, {stream: "0"}, count=100
                    )
                    seen = {entry_id for entry_id, _ in entries}
                    own = [
                        (entry_id, fields)
                        for _, items in read or []
                        for entry_id, fields in items
                        if entry_id not in seen and stuck.get(entry_id, 0) < 3
                    ]
                    backlog = bool(own)
                    entries.extend(own)
                if not backlog:
                    read = await self.redis.xreadgroup(
                        group, self.config.replica, {stream: ">"}, count=50, block=1000
                    )
                    for _, items in read or []:
                        entries.extend(items)
                for entry_id, fields in entries:
                    applying = entry_id
                    if fields:  # None: trimmed from the stream while pending
                        await self._apply_outcome(fields)
                    await self.redis.xack(stream, group, entry_id)
                    stuck.pop(entry_id, None)
            except Exception as exc:
                if failures == 0:
                    _warn("reading call outcomes failed; holding", exc, None)
                if applying is not None and not isinstance(exc, DEPENDENCY_ERRORS):
                    stuck[applying] = stuck.get(applying, 0) + 1
                failures += 1
                grouped = False  # a Redis that came back empty has lost the group
                backlog = True
                await self._pause(failures)
            else:
                if failures:
                    log.info("reading call outcomes again", extra={"failures": failures})
                failures = 0

    async def _apply_outcome(self, fields: Any) -> None:
        try:
            outcome = outcomes.parse_entry(fields)
        except InvalidInput:
            return  # the notifier parks what it cannot read; nothing of the dialer's
        if outcome.call_id.startswith(CONTACT_ROW_PREFIX):
            return  # a contact's own row, written by a dialer
        attempt = await self.store.attempt(outcome.call_id)
        if attempt is None and outcome.status == "opt_out":
            await self._inbound_opt_out(outcome)
            return
        if attempt is None and outcome.status == "callback" and outcome.direction == "inbound":
            await self._inbound_callback(outcome)
            return
        if attempt is None or attempt.ended_at is not None:
            return
        callback_at = callbacks.requested_callback_at(outcome)
        await self._finish(
            attempt.id,
            outcome.status,
            outcome.hangup_cause,
            None,
            self.clock(),
            callback_at=callback_at,
            first_audio_ms=agent_heard_after_ms(outcome),
            machine=outcome.amd is not None and outcome.amd.answered_by == "machine",
        )

    async def _inbound_opt_out(self, outcome: outcomes.CallOutcome) -> None:
        """A caller who rang in and asked never to be called: their number joins the list."""
        number = outcome.caller if outcome.direction == "inbound" else outcome.callee
        if not number:
            return
        try:
            phone = normalize_number(number, self.config.default_region)
        except InvalidInput:
            return  # a withheld or malformed caller id cannot be listed
        await self.store.add_dnc(phone, source="opt-out", now=self.clock())

    async def _inbound_callback(self, outcome: outcomes.CallOutcome) -> None:
        """A caller who rang in and asked to be called back: a contact of the callbacks
        campaign of their language, due when they asked (read twice, scheduled once)."""
        if callbacks.callback_number(outcome, self.config.default_region) is None:
            log.warning(
                "callback asked for without a number to call back",
                extra={"call_id": outcome.call_id},
            )
            return
        locale = callbacks.outcome_locale(outcome, self.config.callback_locale)
        now = self.clock()
        campaign = await self._callbacks_campaign(locale, now)
        if campaign is None:
            return
        request = callbacks.callback_request(
            outcome, region=self.config.default_region, retry=campaign.spec.retry
        )
        assert request is not None  # an inbound callback with a number
        contact, changed = await self.store.add_callback(campaign.id, request, now=now)
        if not changed:
            return
        log.info(
            "callback scheduled",
            extra={
                "call_id": outcome.call_id,
                "campaign_id": campaign.id,
                "contact_id": contact.id,
                "state": str(contact.state),
            },
        )
        if contact.state == ContactState.SKIPPED:
            # On the do-not-call list: never dialled, and the sheet says so at once.
            await self._contact_row(contact, campaign.spec, campaign.id, now)

    async def _callbacks_campaign(self, locale: str, now: datetime) -> CampaignRecord | None:
        """The standing callbacks campaign of ``locale``, created and started if need be; None
        when an operator cancelled it (a paused one holds its callbacks until resumed)."""
        campaign_id = callbacks.campaign_id(locale)
        campaign = await self.store.campaign(campaign_id)
        if campaign is None:
            spec = callbacks.campaign_spec(
                locale, region=self.config.default_region, timezone=self.config.callback_timezone
            )
            if await self.store.ensure_campaign(campaign_id, spec, now=now):
                log.info("callbacks campaign created", extra={"campaign_id": campaign_id})
            campaign = await self.store.campaign(campaign_id)
            assert campaign is not None  # campaigns are never deleted
        if campaign.state == CampaignState.DRAFT:
            campaign = await self.store.transition(campaign_id, CampaignState.RUNNING, now=now)
        if campaign.state in (CampaignState.COMPLETED, CampaignState.CANCELLED):
            log.warning(
                "callbacks campaign ended by an operator; the callback is not kept",
                extra={"campaign_id": campaign_id, "state": str(campaign.state)},
            )
            return None
        return campaign

    # ------------------------------------------------------------------ leases

    async def _renew(self, now: datetime) -> None:
        """Keep the leases (and slots) of this replica's live calls."""
        until = now + timedelta(seconds=self.config.lease_s)
        for attempt_id, flight in list(self.in_flight.items()):
            if flight.hung_up_at is not None and (
                time.monotonic() - flight.hung_up_at > self.config.outcome_wait_s
            ):
                # Answered and hung up, but the dialog's outcome never came.
                await self._finish(attempt_id, "failed", flight.hangup_cause, None, now)
                continue
            await self.store.extend_lease(flight.contact_id, owner=self.config.replica, until=until)
            await self.live.extend_slot(flight.campaign_id, attempt_id, until=until.timestamp())

    async def _recover(self, now: datetime) -> None:
        """Contacts whose replica died: find their call on the switch before anything else."""
        for claim in await self.store.expired_leases(now=now):
            if claim.attempt_id in self.in_flight:
                continue
            if not await self.store.take_over(
                claim.contact_id, owner=self.config.replica, lease_s=self.config.lease_s, now=now
            ):
                continue  # another replica took it
            attempt = await self.store.attempt(claim.attempt_id)
            if attempt is None or attempt.ended_at is not None:
                continue
            if attempt.call_id is None:
                # The replica died before its originate went out: the claim costs nothing, and
                # the number it locked and the slot it took are free at once.
                await self.store.defer(
                    claim.contact_id, until=now, reason="claimed by a stopped dialer", now=now
                )
                await self._settle(Leftover(claim.campaign_id, claim.attempt_id, claim.phone))
                continue
            if not self.switch.connected.is_set():
                continue  # asked again once the switch answers (the lease is ours now)
            exists = (await self.switch.api(f"uuid_exists {claim.attempt_id}")).strip()
            if exists == "true":
                log.info(
                    "call of a lost replica found on the switch",
                    extra={"attempt_id": claim.attempt_id},
                )
                flight = InFlight(
                    claim.campaign_id,
                    claim.contact_id,
                    claim.attempt_id,
                    claim.phone,
                    answered_at=time.monotonic() if attempt.answered_at is not None else None,
                )
                self.in_flight[claim.attempt_id] = flight
                await self.live.hold_number(
                    claim.phone, claim.attempt_id, ttl_s=self.config.max_call_s
                )
                continue
            if attempt.answered_at is not None:
                # The call ended while nobody watched: its outcome is on calls:completed, and
                # the consumer group hands it to a live replica. Wait for it, then give up.
                flight = InFlight(
                    claim.campaign_id,
                    claim.contact_id,
                    claim.attempt_id,
                    claim.phone,
                    answered_at=time.monotonic(),
                    hung_up_at=time.monotonic(),
                )
                self.in_flight[claim.attempt_id] = flight
                continue
            # No channel and never answered: the originate did not go out or failed unseen.
            await self._finish(claim.attempt_id, "failed", "UNKNOWN_RESULT", None, now)


def _said(exc: BaseException) -> str:
    return (exc.message if isinstance(exc, AgentError) else str(exc) or type(exc).__name__)[:200]


def _warn(what: str, exc: BaseException, attempt_id: str | None) -> None:
    """A dependency's failure is a warning with its message; anything else is a bug to see with
    its traceback."""
    extra = {"attempt_id": attempt_id, "error": _said(exc)}
    if isinstance(exc, DEPENDENCY_ERRORS):
        log.warning(what, extra=extra)
    else:
        log.error(what, extra=extra, exc_info=exc)
