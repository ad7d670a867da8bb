"""The dialog engine: one event of one call in, the agent's reply out.

Per event: take the call's turn lock, load its session from Redis, answer a retried event from
the stored response, otherwise run the script graph, save the session and remember the
response. Sentences are handed to ``emit`` the moment a node produces them, so a streaming
client hears a scripted question before the turn's bookkeeping is done.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from redis.asyncio import Redis
from redis.exceptions import RedisError

from callkit.errors import InvalidInput, NotFound, PayloadTooLarge
from callkit.llm_client import LlmClient
from policy_engine import outcome as outcomes
from policy_engine.calendar import Calendar
from policy_engine.events import (
    CallEnded,
    CallStarted,
    DialogReply,
    Dtmf,
    Event,
    ReplySentence,
    UserInterrupted,
    UserSilence,
    UserUtterance,
)
from policy_engine.graph import Deps, DialogState, Turn, build_graph, release_hold
from policy_engine.parsers import normalize
from policy_engine.script import Script
from policy_engine.session import Sentence, Session, SessionStore
from policy_engine.understand import YES_NO_SLOTS

log = logging.getLogger("policy_engine")
Emit = Callable[[Sentence], Awaitable[None]]


async def _discard(sentence: Sentence) -> None:
    return None


class PolicyMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        buckets = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16)
        self.turn = Histogram(
            "policy_turn_seconds",
            "Event in to reply done, by whether the LLM was called.",
            ["llm"],
            buckets=buckets,
            registry=registry,
        )
        self.first_sentence = Histogram(
            "policy_first_sentence_seconds",
            "Event in to the first reply sentence, by whether the LLM was called.",
            ["llm"],
            buckets=buckets,
            registry=registry,
        )
        self.llm_calls = Histogram(
            "policy_llm_calls_per_turn",
            "LLM requests made by one turn.",
            buckets=(0, 1, 2, 3, 5),
            registry=registry,
        )
        self.degraded = Counter(
            "policy_llm_degraded_turns_total",
            "Turns that wanted the LLM but went on with the deterministic parsers alone.",
            registry=registry,
        )
        self.events = Counter(
            "policy_events_total", "Dialog events by type.", ["type"], registry=registry
        )
        self.replays = Counter(
            "policy_replayed_events_total",
            "Retried events answered from the stored response.",
            registry=registry,
        )
        self.calls = Counter(
            "policy_calls_completed_total",
            "Finished calls by status.",
            ["status"],
            registry=registry,
        )
        self.completion = Gauge(
            "policy_completion_ratio",
            "Share of finished calls that ended booked, since start.",
            registry=registry,
        )
        self.transitions = Counter(
            "policy_state_transitions_total",
            "FSM transitions by target state.",
            ["to"],
            registry=registry,
        )
        self._finished = 0
        self._booked = 0

    def call_finished(self, status: str) -> None:
        self.calls.labels(status).inc()
        self._finished += 1
        self._booked += status == "booked"
        self.completion.set(self._booked / self._finished)


class DialogEngine:
    def __init__(
        self,
        script: Script,
        redis: Redis,
        *,
        llm: LlmClient | None,
        system_prompt: str,
        session_ttl_s: int = 86400,
        max_text_chars: int = 2000,
        max_silences: int = 2,
        answer_with_llm: bool = True,
        default_locale: str = "en",
        clock: Callable[[], datetime] | None = None,
        metrics: PolicyMetrics | None = None,
    ) -> None:
        self.script = script
        self.redis = redis
        self.store = SessionStore(redis, ttl_s=session_ttl_s)
        self.calendar = Calendar(redis, script.schedule)
        self.deps = Deps(
            script=script,
            calendar=self.calendar,
            llm=llm,
            system_prompt=system_prompt,
            max_silences=max_silences,
            answer_with_llm=answer_with_llm,
        )
        self.graph = build_graph(script)
        self.max_text_chars = max_text_chars
        self.default_locale = default_locale
        self.clock = clock or (lambda: datetime.now(script.schedule.zone))
        self.metrics = metrics or PolicyMetrics()
        # Enough steps to walk the whole script twice in one turn.
        self.recursion_limit = 4 * len(script.states) + 20

    # ------------------------------------------------------------------ public API

    async def handle(self, session_id: str, event: Event, emit: Emit = _discard) -> DialogReply:
        started = time.perf_counter()
        self.metrics.events.labels(event.type).inc()
        self._check_text(event)
        first_at: list[float] = []

        async def timed_emit(sentence: Sentence) -> None:
            if not first_at:
                first_at.append(time.perf_counter())
            await emit(sentence)

        async with self.store.locked(session_id):
            session = await self.store.load(session_id)
            key = _event_key(event)
            if session is None:
                if not isinstance(event, CallStarted):
                    raise NotFound(
                        f"unknown session {session_id!r}: send call.started first "
                        "(or the session expired)",
                        code="unknown_session",
                    )
                session = self._new_session(session_id, event)
            elif key is not None and key in session.responses:
                self.metrics.replays.inc()
                stored = DialogReply.model_validate(session.responses[key])
                for r in stored.replies:
                    await emit(Sentence(text=r.text, cache_key=r.cache_key))
                return stored.model_copy(update={"replayed": True})
            elif isinstance(event, CallStarted):
                return self._reply(session, [], [])

            turn = await self._dispatch(session, event, timed_emit)
            reply = self._reply(session, turn.reply if turn else [], turn.actions if turn else [])
            reply.llm_calls = turn.llm_calls if turn else 0
            if key is not None:
                session.remember(key, reply.model_dump(mode="json"))
            if session.status and not session.outcome_sent:
                await self._finish(session)
            await self.store.save(session)
        if turn is not None:
            used = "yes" if turn.llm_calls else "no"
            self.metrics.turn.labels(used).observe(time.perf_counter() - started)
            if first_at:
                self.metrics.first_sentence.labels(used).observe(first_at[0] - started)
            self.metrics.llm_calls.observe(turn.llm_calls)
            if turn.llm_failed:
                self.metrics.degraded.inc()
            await self._publish(session, turn, time.perf_counter() - started)
        return reply

    async def get(self, session_id: str) -> Session:
        session = await self.store.load(session_id)
        if session is None:
            raise NotFound(f"unknown session {session_id!r}", code="unknown_session")
        return session

    async def delete(self, session_id: str) -> None:
        async with self.store.locked(session_id):
            session = await self.store.load(session_id)
            if session is None:
                raise NotFound(f"unknown session {session_id!r}", code="unknown_session")
            turn = self._turn(session, _discard)
            await release_hold(turn)
            await self.store.delete(session_id)

    # ------------------------------------------------------------------ events

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

    def _new_session(self, session_id: str, event: CallStarted) -> Session:
        locale = event.locale or self.default_locale
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
        return session

    def _turn(self, session: Session, emit: Emit) -> Turn:
        return Turn(deps=self.deps, session=session, now=self.clock(), emit=emit)

    async def _run(self, turn: Turn, state: DialogState) -> Turn:
        await self.graph.ainvoke(
            state, context=turn, config={"recursion_limit": self.recursion_limit}
        )
        return turn

    async def _dispatch(self, session: Session, event: Event, emit: Emit) -> Turn | None:
        if isinstance(event, CallEnded):
            await self._end_call(session, event)
            return None
        if session.ended or (session.status and isinstance(event, UserSilence)):
            return self._turn(session, emit)  # nothing more to say on a finished call
        turn = self._turn(session, emit)
        session.turns += 1
        if isinstance(event, CallStarted):
            await self._run(turn, {"entry": "resume"})
        elif isinstance(event, UserUtterance):
            await self._utterance(turn, event.text)
        elif isinstance(event, UserInterrupted):
            self._rollback(session, event.heard_text)
            if event.utterance is not None:
                await self._utterance(turn, event.utterance.text)
        elif isinstance(event, UserSilence):
            await self._run(turn, {"entry": "silence"})
        elif isinstance(event, Dtmf):
            await self._utterance(
                turn, self._dtmf_text(session, event.digits), shown=f"[DTMF {event.digits}]"
            )
        if turn.reply:
            session.add_line("agent", " ".join(s.text for s in turn.reply), state=session.state)
        session.last_reply = turn.reply
        session.llm_calls += turn.llm_calls
        session.degraded_turns += turn.llm_failed
        for _, to in turn.transitions:
            self.metrics.transitions.labels(to).inc()
        return turn

    async def _utterance(self, turn: Turn, text: str, shown: str | None = None) -> None:
        session = turn.session
        if not text.strip():
            raise InvalidInput("the utterance is empty", code="empty_utterance")
        session.add_line("caller", shown or text, state=session.state)
        if session.status:
            return  # the script has ended; the caller's words are kept, nothing is said
        await self._run(turn, {"entry": "understand", "text": text})

    def _dtmf_text(self, session: Session, digits: str) -> str:
        """Keypad input as words the parsers read: 1 yes, 2 no, 0 a person, digits a number."""
        state = self.script.states.get(session.state)
        expects = set(state.slots) if state else set()
        lex = self.script.lexicons[session.locale]
        if digits == "0":
            return lex.intents["wants_human"][0]
        if expects & YES_NO_SLOTS and digits in ("1", "2"):
            return (lex.yes if digits == "1" else lex.no)[0]
        return " ".join(digits)

    def _rollback(self, session: Session, heard_text: str) -> None:
        """The caller barged in: keep only what they heard of the agent's last turn.

        Sentences heard in full stand; from the first one cut short, announcements are made
        again and questions count as not asked, and the call goes back to that point.
        """
        heard = len(_letters(heard_text))
        spoken = 0
        cut: int | None = None
        for i, sentence in enumerate(session.last_reply):
            spoken += len(_letters(sentence.text))
            if spoken > heard + 2:
                cut = i
                break
        if session.transcript and session.transcript[-1].role == "agent":
            line = session.transcript[-1]
            line.text = heard_text
            line.interrupted = True
        if cut is None:
            return
        back_to: str | None = None
        for sentence in session.last_reply[cut:]:
            state = self.script.states.get(sentence.state or "")
            if state is None or sentence.source not in ("say", "reprompt"):
                continue
            if state.kind == "announce" and state.id in session.said:
                session.said.remove(state.id)
            if state.kind == "question" and session.asked.get(state.id):
                session.asked[state.id] -= 1
            if back_to is None and state.kind in ("announce", "question"):
                back_to = state.id
        if back_to is not None:
            session.state = back_to
        session.last_reply = session.last_reply[:cut]

    async def _end_call(self, session: Session, event: CallEnded) -> None:
        if session.ended:
            return
        session.ended_at = time.time()
        session.hangup_cause = event.cause
        turn = self._turn(session, _discard)
        if session.hold is not None and not session.hold.booked:
            await release_hold(turn)
        if not session.status:
            session.status = outcomes.final_status(session)
        if not session.outcome_sent:
            await self._finish(session)

    async def _finish(self, session: Session) -> None:
        """Append the outcome to calls:completed once (at the script's end or on hang-up)."""
        if session.ended_at is None and session.status:
            session.ended_at = time.time()
        record = outcomes.build_outcome(self.script, session)
        await self.redis.xadd(outcomes.STREAM, outcomes.entry(record))
        session.outcome_sent = True
        self.metrics.call_finished(record["status"])
        log.info(
            "call outcome written",
            extra={
                "call_id": session.session_id,
                "status": record["status"],
                "turns": session.turns,
            },
        )

    async def _publish(self, session: Session, turn: Turn, seconds: float) -> None:
        """State changes and the turn's latency on calls:events (bounded), for dashboards."""
        try:
            for before, after in turn.transitions:
                await self.redis.xadd(
                    outcomes.EVENTS_STREAM,
                    {"call_id": session.session_id, "type": "state", "from": before, "to": after},
                    maxlen=outcomes.EVENTS_MAXLEN,
                    approximate=True,
                )
            await self.redis.xadd(
                outcomes.EVENTS_STREAM,
                {
                    "call_id": session.session_id,
                    "type": "turn",
                    "state": session.state,
                    "ms": f"{seconds * 1000:.1f}",
                    "llm_calls": str(turn.llm_calls),
                },
                maxlen=outcomes.EVENTS_MAXLEN,
                approximate=True,
            )
        except (RedisError, OSError) as exc:
            log.warning("could not publish call events", extra={"error": type(exc).__name__})

    def _reply(
        self, session: Session, sentences: list[Sentence], actions: list[dict[str, Any]]
    ) -> DialogReply:
        return DialogReply(
            session_id=session.session_id,
            state=session.state,
            replies=[ReplySentence(text=s.text, cache_key=s.cache_key) for s in sentences],
            slots={k: v for k, v in session.slots.items() if v is not None},
            actions=actions or [{"type": "none"}],
            status=session.status,
            ended=session.ended or bool(session.status),
        )


def _event_key(event: Event) -> str | None:
    if isinstance(event, UserUtterance):
        return f"utterance:{event.segment_id}"
    if isinstance(event, UserInterrupted) and event.utterance is not None:
        return f"utterance:{event.utterance.segment_id}"
    if isinstance(event, CallStarted):
        return "call.started"
    if event.event_id:
        return f"{event.type}:{event.event_id}"
    return None


def _letters(text: str) -> str:
    return re.sub(r"[^\w]", "", normalize(text).lower())


def dump(reply: DialogReply) -> str:
    return json.dumps(reply.model_dump(mode="json"), ensure_ascii=False)
