"""The dialog engine: one event of one call in, the agent's reply out.

Per event:

1. Take the call's turn lock and load its session (a new call's, on an outbound call with the
   dialer's campaign context: ``outbound.py``).
2. Answer a retried event from its stored reply (``idempotency.py``).
3. Otherwise run the event (``turns.py``); sentences reach ``emit`` the moment a node produces
   them, so a streaming client hears a scripted question before the turn's bookkeeping is done.
4. Remember the reply, append the outcome once the call has ended, save the session, and set
   (or, with the outcome written, cancel) the call's outcome deadline (``deadlines.py``).
5. After the lock: metrics, and the turn's live events (``publishing.py``).

``sweep`` writes the outcome of calls whose deadline passed without a ``call.ended``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from callkit.contracts.campaign import CampaignCall
from callkit.contracts.dialog import (
    Action,
    CallEnded,
    CallStarted,
    DialogReply,
    Event,
    NoAction,
    ReplySentence,
    UserInterrupted,
    UserUtterance,
)
from callkit.errors import AgentError, InvalidInput, NotFound, PayloadTooLarge
from policy_engine import idempotency
from policy_engine import outcome as outcomes
from policy_engine.deadlines import LOST_CAUSE, OutcomeDeadlines, outcome_due_at
from policy_engine.dialog.booking import release_hold
from policy_engine.dialog.calendar import Calendar
from policy_engine.dialog.context import Deps, Emit, Turn
from policy_engine.dialog.llm import DialogLlm
from policy_engine.graph import compile_graph
from policy_engine.metrics import PolicyMetrics
from policy_engine.outbound import CampaignCalls, call_reason, contact_study
from policy_engine.publishing import Publisher, live_events
from policy_engine.script import VOICEMAIL_EXIT, Script
from policy_engine.session import Sentence, Session, SessionStore
from policy_engine.turns import TurnRunner, discard

log = logging.getLogger("policy_engine")
Clock = Callable[[], datetime]
SWEEP_BATCH = 100


class DialogEngine:
    def __init__(
        self,
        script: Script,
        *,
        sessions: SessionStore,
        calendar: Calendar,
        publisher: Publisher,
        llm: DialogLlm | None,
        system_prompt: str,
        max_text_chars: int = 2000,
        max_silences: int = 2,
        answer_with_llm: bool = True,
        llm_deadline_s: float = 2.0,
        ack_after_s: float = 0.7,
        default_locale: str | None = None,
        clock: Clock | None = None,
        metrics: PolicyMetrics | None = None,
        deadlines: OutcomeDeadlines | None = None,
        outcome_exit_grace_s: float = 60.0,
        outcome_idle_s: float = 1800.0,
        campaigns: CampaignCalls | None = None,
    ) -> None:
        self.script = script
        # Without them (an engine with no Redis), an outbound call gets the generic opening.
        self.campaigns = campaigns
        self.sessions = sessions
        self.calendar = calendar
        self.publisher = publisher
        # Without deadlines (a dialogue run), only call.ended writes the outcome.
        self.deadlines = deadlines
        self.outcome_exit_grace_s = outcome_exit_grace_s
        self.outcome_idle_s = outcome_idle_s
        self.max_text_chars = max_text_chars
        self.default_locale = default_locale or script.default_locale
        self.clock = clock or (lambda: datetime.now(script.schedule.zone))
        self.metrics = metrics or PolicyMetrics()
        deps = Deps(
            script=script,
            calendar=calendar,
            llm=llm,
            system_prompt=system_prompt,
            max_silences=max_silences,
            answer_with_llm=answer_with_llm,
            llm_deadline_s=llm_deadline_s,
            ack_after_s=ack_after_s,
        )
        self.turns = TurnRunner(deps, compile_graph(script), lambda: self.clock())

    # ------------------------------------------------------------------ public API

    async def handle(self, session_id: str, event: Event, emit: Emit = discard) -> DialogReply:
        started = time.perf_counter()
        self.metrics.events.labels(event.type).inc()
        self._check_text(event)
        first_at: list[float] = []

        async def timed_emit(sentence: Sentence) -> None:
            if not first_at:
                first_at.append(time.perf_counter())
            await emit(sentence)

        async with self.sessions.locked(session_id):
            session = await self.sessions.load(session_id)
            key = idempotency.event_key(event)
            if session is None:
                if not isinstance(event, CallStarted):
                    raise NotFound(
                        f"unknown session {session_id!r}: send call.started first "
                        "(or the session expired)",
                        code="unknown_session",
                    )
                campaign = await self._campaign_call(session_id, event)
                session = self._new_session(session_id, event, campaign)
            else:
                stored = idempotency.stored_reply(session, key)
                if stored is not None:
                    self.metrics.replays.inc()
                    for r in stored.replies:
                        await emit(Sentence(text=r.text, cache_key=r.cache_key))
                    return stored
                if isinstance(event, CallStarted):
                    return self._reply(session, [], [])

            session, turn = await self.turns.run(session, event, timed_emit)
            reply = self._reply(session, turn.reply if turn else [], turn.actions if turn else [])
            reply.llm_calls = turn.llm_calls if turn else 0
            idempotency.remember(session, key, reply)
            # The outcome waits for call.ended even after the script's exit: only the bridge
            # knows the recording and the call's latency figures.
            if session.ended and not session.outcome_sent:
                await self._finish(session)
            self._set_due(session)
            await self.sessions.save(session)
            await self._track(session)
        if turn is not None:
            self._observe(turn, started, first_at)
            await self.publisher.live(live_events(session, turn, time.perf_counter() - started))
        return reply

    async def get(self, session_id: str) -> Session:
        session = await self.sessions.load(session_id)
        if session is None:
            raise NotFound(f"unknown session {session_id!r}", code="unknown_session")
        return session

    async def delete(self, session_id: str) -> None:
        async with self.sessions.locked(session_id):
            session = await self.sessions.load(session_id)
            if session is None:
                raise NotFound(f"unknown session {session_id!r}", code="unknown_session")
            await release_hold(self.turns.turn(session))
            await self.sessions.delete(session_id)
            if self.deadlines is not None:
                await self.deadlines.cancel(session_id)

    async def sweep(self) -> int:
        """Write the outcome of every call whose deadline has passed; how many were written.

        A call that fails here (Redis away mid-way) stays claimed and is due again when its
        claim's lease runs out.
        """
        if self.deadlines is None:
            return 0
        now = self.clock().timestamp()
        written = 0
        for call_id in await self.deadlines.claim_due(now, SWEEP_BATCH):
            try:
                written += await self.expire(call_id, now)
            except AgentError as exc:
                log.warning(
                    "could not write a lost call's outcome",
                    extra={"call_id": call_id, "error": exc.message},
                )
        return written

    async def expire(self, call_id: str, now: float) -> bool:
        """Under the call's lock, write the outcome of a call whose deadline has passed and
        that has none yet, as a lost call; True when it was written."""
        assert self.deadlines is not None
        async with self.sessions.locked(call_id):
            session = await self.sessions.load(call_id)
            if session is None or session.outcome_sent:
                if session is None:
                    log.warning("a lost call's session has expired", extra={"call_id": call_id})
                await self.deadlines.cancel(call_id)
                return False
            if session.outcome_due_at is not None and session.outcome_due_at > now:
                # An event came after the claim: the call is alive, its deadline moved on.
                await self.deadlines.schedule(call_id, session.outcome_due_at)
                return False
            if not session.ended:
                last = session.transcript[-1].at if session.transcript else session.started_at
                await self.turns.end_call(session, CallEnded(cause=LOST_CAUSE), at=last)
            await self._finish(session)
            await self.sessions.save(session)
            await self.deadlines.cancel(call_id)
        return True

    # ------------------------------------------------------------------ steps

    def _check_text(self, event: Event) -> None:
        texts = []
        if isinstance(event, UserUtterance):
            texts.append(event.text)
        elif isinstance(event, UserInterrupted):
            texts.append(event.heard_text)
            if event.utterance is not None:
                texts.append(event.utterance.text)
        for text in texts:
            if len(text) > self.max_text_chars:
                raise PayloadTooLarge(
                    f"text is {len(text)} characters; the limit is {self.max_text_chars} "
                    "(POLICY_MAX_TEXT_CHARS)"
                )

    async def _campaign_call(self, session_id: str, event: CallStarted) -> CampaignCall | None:
        """The dialer's context of an outbound call; None for an inbound one, or when it cannot
        be read: the person called is already listening, so the opening goes on without it."""
        if event.direction != "outbound" or self.campaigns is None:
            return None
        try:
            return await self.campaigns.get(session_id)
        except AgentError as exc:
            log.warning(
                "campaign call context unavailable; generic opening",
                extra={"call_id": session_id, "error": exc.message},
            )
            return None

    def _new_session(
        self, session_id: str, event: CallStarted, campaign: CampaignCall | None = None
    ) -> Session:
        locale = event.locale
        if locale is None and campaign is not None and campaign.locale in self.script.locales:
            locale = campaign.locale
        locale = locale or self.default_locale
        if locale not in self.script.locales:
            raise InvalidInput(
                f"locale {locale!r} is not in the script; it has {', '.join(self.script.locales)}",
                code="unsupported_locale",
            )
        session = Session(
            session_id=session_id,
            direction=event.direction,
            caller=event.caller,
            callee=event.callee,
            campaign_id=event.campaign_id,
            locale=locale,
        )
        if event.contact is not None:
            if event.contact.name:
                session.slots["client_name"] = event.contact.name
            if event.contact.phone:
                session.slots["phone"] = event.contact.phone
        if event.direction == "outbound":
            # What the contact list knows is not asked again.
            if campaign is not None:
                if campaign.name and not session.slots.get("client_name"):
                    session.slots["client_name"] = campaign.name.strip()
                if campaign.phone and not session.slots.get("phone"):
                    session.slots["phone"] = campaign.phone
                if campaign.campaign_id and session.campaign_id is None:
                    session.campaign_id = campaign.campaign_id
                study = contact_study(self.script, campaign, locale)
                if study is not None:
                    session.slots["study_type"] = study
            session.call_reason = call_reason(self.script, campaign, locale)
            session.amd = event.amd
            session.voicemail_silent = campaign is not None and campaign.on_voicemail == "hangup"
            if event.amd is not None and event.amd.answered_by == "machine":
                # The greeting is over (the bridge waits for the beep): the message, or nothing.
                session.state = VOICEMAIL_EXIT
        return session

    def _set_due(self, session: Session) -> None:
        if self.deadlines is None or session.outcome_sent:
            session.outcome_due_at = None
            return
        session.outcome_due_at = outcome_due_at(
            self.script,
            session,
            self.clock().timestamp(),
            exit_grace_s=self.outcome_exit_grace_s,
            idle_s=self.outcome_idle_s,
        )

    async def _track(self, session: Session) -> None:
        """Mirror the session's outcome deadline into the store every replica sweeps."""
        if self.deadlines is None:
            return
        if session.outcome_due_at is None:
            await self.deadlines.cancel(session.session_id)
        else:
            await self.deadlines.schedule(session.session_id, session.outcome_due_at)

    async def _finish(self, session: Session) -> None:
        """Append the outcome to calls:completed once, when the call has ended."""
        record = outcomes.build_outcome(self.script, session)
        await self.publisher.completed(record)
        session.outcome_sent = True
        self.metrics.call_finished(record.status)
        log.info(
            "call outcome written",
            extra={
                "call_id": session.session_id,
                "status": record.status,
                "turns": session.turns,
                "lost": record.hangup_cause == LOST_CAUSE,
            },
        )

    def _observe(self, turn: Turn, started: float, first_at: list[float]) -> None:
        used = "yes" if turn.llm_calls else "no"
        self.metrics.turn.labels(used).observe(time.perf_counter() - started)
        if first_at:
            self.metrics.first_sentence.labels(used).observe(first_at[0] - started)
        self.metrics.llm_calls.observe(turn.llm_calls)
        if turn.llm_failed:
            self.metrics.degraded.inc()
        if turn.llm_late:
            self.metrics.late.inc()
        if turn.acknowledged:
            self.metrics.acknowledgements.inc()
        for _, to in turn.transitions:
            self.metrics.transitions.labels(to).inc()

    def _reply(
        self, session: Session, sentences: list[Sentence], actions: list[Action]
    ) -> DialogReply:
        return DialogReply(
            session_id=session.session_id,
            state=session.state,
            replies=[ReplySentence(text=s.text, cache_key=s.cache_key) for s in sentences],
            slots={k: v for k, v in session.slots.items() if v is not None},
            actions=actions or [NoAction()],
            status=session.status,
            ended=session.ended or bool(session.status),
        )
