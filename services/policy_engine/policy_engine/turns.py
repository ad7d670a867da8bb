"""Dispatch: what each kind of call event does to the call, as one run of the script graph.

An utterance (or keypad input read as words) enters the graph at ``understand``, a silence at
``silence``, a new call at ``resume``; a barge-in first rolls the call back to what the caller
heard. A hang-up runs no graph: it frees the held slot and settles the call's status.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime

from callkit.contracts.dialog import (
    CallEnded,
    CallMachine,
    CallStarted,
    Dtmf,
    Event,
    HeardUtterance,
    UserInterrupted,
    UserSilence,
    UserUtterance,
)
from callkit.errors import InvalidInput
from policy_engine import outcome as outcomes
from policy_engine.dialog.booking import release_hold
from policy_engine.dialog.context import Deps, Emit, Turn
from policy_engine.dialog.nodes import exit_action
from policy_engine.dialog.rollback import roll_back
from policy_engine.dialog.state import DialogState
from policy_engine.graph import CompiledDialog
from policy_engine.script import NUMBER_SLOTS, VOICEMAIL_EXIT, YES_NO_SLOTS
from policy_engine.session import Sentence, Session


async def discard(sentence: Sentence) -> None:
    return None


class TurnRunner:
    def __init__(self, deps: Deps, graph: CompiledDialog, clock: Callable[[], datetime]) -> None:
        self.deps = deps
        self.graph = graph
        self.clock = clock
        # Enough steps to walk the whole script twice in one turn.
        self.recursion_limit = 4 * len(deps.script.states) + 20

    def turn(self, session: Session, emit: Emit = discard) -> Turn:
        return Turn(deps=self.deps, session=session, now=self.clock(), emit=emit)

    async def run(self, session: Session, event: Event, emit: Emit) -> tuple[Session, Turn | None]:
        """The event applied to the call: the session as it now is, and the turn (None for a
        hang-up, which says nothing)."""
        if isinstance(event, CallEnded):
            await self.end_call(session, event)
            return session, None
        if session.ended:
            return session, self.turn(session, emit)  # nothing more to say on a finished call
        if session.status and session.final_state in self.deps.script.states:
            return session, await self._after_exit(session, event, emit)
        if isinstance(event, UserInterrupted):
            session = roll_back(session, event.heard_text, self.deps.script.states)
        turn = self.turn(session, emit)
        session.turns += 1
        if isinstance(event, CallMachine):
            # The beep after the opening: whatever the call was on, the voicemail way now.
            session.amd = event.amd
            session.state = VOICEMAIL_EXIT
            await self._graph(turn, {"entry": "resume"})
        elif isinstance(event, CallStarted):
            await self._graph(turn, {"entry": "resume"})
        elif isinstance(event, UserUtterance):
            await self._utterance(turn, event.text)
        elif isinstance(event, UserInterrupted):
            if event.utterance is not None:
                await self._utterance(turn, event.utterance.text)
        elif isinstance(event, UserSilence):
            await self._graph(turn, {"entry": "silence"})
        elif isinstance(event, Dtmf):
            turn.keypad = True
            await self._utterance(
                turn, self.dtmf_text(session, event.digits), shown=f"[DTMF {event.digits}]"
            )
        if turn.reply:
            session.add_line("agent", " ".join(s.text for s in turn.reply), state=session.state)
        session.last_reply = turn.reply
        session.llm_calls += turn.llm_calls
        session.llm_turns += turn.llm_wanted
        session.degraded_turns += turn.llm_failed
        return session, turn

    async def _after_exit(self, session: Session, event: Event, emit: Emit) -> Turn:
        """The script reached its exit and the caller still speaks or is silent: the caller's
        words are kept, and the exit's hang-up or transfer is asked for again (the bridge stops
        a turn the caller talks over, and the exit's action with it). Nothing more is said,
        unless the goodbye was stopped before the caller heard any of it (the rest of their
        sentence came in as it began: "No, thank you, | that is too much."): it is said again."""
        turn = self.turn(session, emit)
        words = event.utterance if isinstance(event, UserInterrupted) else event
        if isinstance(words, HeardUtterance | UserUtterance) and words.text.strip():
            session.add_line("caller", words.text, state=session.state)
        elif isinstance(event, Dtmf):
            session.add_line("caller", f"[DTMF {event.digits}]", state=session.state)
        if isinstance(event, UserInterrupted) and not event.heard_text.strip():
            for sentence in session.last_reply:
                if sentence.source != "ack":
                    await turn.say(sentence)
        assert session.final_state is not None
        exit_action(turn, self.deps.script.states[session.final_state])
        if turn.reply:
            session.last_reply = turn.reply  # else the goodbye stays the reply to say again
        return turn

    async def _graph(self, turn: Turn, state: DialogState) -> None:
        await self.graph.ainvoke(
            state, context=turn, config={"recursion_limit": self.recursion_limit}
        )

    async def _utterance(self, turn: Turn, text: str, shown: str | None = None) -> None:
        session = turn.session
        if not text.strip():
            raise InvalidInput("the utterance is empty", code="empty_utterance")
        session.add_line("caller", shown or text, state=session.state)
        if session.status:
            return  # the script has ended; the caller's words are kept, nothing is said
        await self._graph(turn, {"entry": "understand", "text": text})

    def dtmf_text(self, session: Session, digits: str) -> str:
        """Keypad input as words the parsers read. To the offer of a person, 1 (or 0) is yes
        and 2 no. While a number is asked for (the phone, the age and weight) the keys are
        that number, a 0 among them or alone too, ``*`` parting two numbers. Elsewhere a lone
        0 asks for a person, 1 and 2 answer a yes or no question, and other keys are digits."""
        script = self.deps.script
        state = script.states.get(session.state)
        expects = set(state.slots) if state else set()
        lex = script.lexicons[session.locale]
        if session.person_offered is not None and digits in ("0", "1", "2"):
            return (lex.no if digits == "2" else lex.yes)[0]
        numbers = [n for n in re.split(r"[^0-9]+", digits) if n]
        if expects & NUMBER_SLOTS and numbers:
            if "phone" in expects:
                return " ".join("".join(numbers))
            return " ".join(numbers)
        if digits == "0":
            return lex.intents["wants_human"][0]
        if expects & YES_NO_SLOTS and digits in ("1", "2"):
            return (lex.yes if digits == "1" else lex.no)[0]
        return " ".join(digits)

    async def end_call(self, session: Session, event: CallEnded, at: float | None = None) -> None:
        """Settle a hung-up call (``at``: when it ended, if not now)."""
        if session.ended:
            return
        session.ended_at = time.time() if at is None else at
        session.hangup_cause = event.cause
        session.recording_path = event.recording_path
        session.latency = event.latency
        if session.hold is not None and not session.hold.booked:
            await release_hold(self.turn(session))
        if not session.status:
            session.status = outcomes.final_status(session)
