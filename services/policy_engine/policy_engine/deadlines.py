"""When a call's outcome is due without its ``call.ended``, and the store that keeps the dates.

The outcome is written on ``call.ended`` because only the bridge knows the recording and the
call's latency. A bridge that dies or loses the call never sends it, so every handled event
also sets the call's outcome deadline: shortly after the script's exit, or after a long idle
spell while the call is still in the script (or with a person after a transfer). A sweeper in
every replica claims the calls whose deadline has passed and writes their outcome from the
session (``DialogEngine.expire``); ``call.ended`` cancels the deadline.
"""

from __future__ import annotations

from typing import Protocol

from policy_engine.script import Script
from policy_engine.session import Session

#: The hang-up cause of an outcome written because no call.ended came.
LOST_CAUSE = "LOST_NO_CALL_ENDED"


class OutcomeDeadlines(Protocol):
    """Call ids by when their outcome is due (epoch seconds), shared by every replica."""

    async def schedule(self, call_id: str, due_at: float) -> None:
        """Set the call's deadline, replacing the one it had."""

    async def cancel(self, call_id: str) -> None:
        """Forget the call's deadline (its outcome is written)."""

    async def claim_due(self, now: float, limit: int) -> list[str]:
        """Up to ``limit`` calls whose deadline has passed, each handed to one claimer only.

        A claimed call is due again a lease later unless it is cancelled or rescheduled first,
        so a replica that dies mid-sweep loses no outcome.
        """


def outcome_due_at(
    script: Script, session: Session, now: float, *, exit_grace_s: float, idle_s: float
) -> float:
    """When the call's outcome is due if no call.ended comes: soon after an exit that hangs up,
    otherwise after the idle spell (a transferred call goes on with a person)."""
    if session.status and session.final_state:
        exit_state = script.states.get(session.final_state)
        if exit_state is None or exit_state.action != "transfer":
            return now + exit_grace_s
    return now + idle_s
