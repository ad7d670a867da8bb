"""Retried events: each has a key, and its reply is kept in the session to be given again.

An utterance is keyed by its ASR segment, so a retry after a timeout or an engine restart gets
the reply the original got and advances nothing; other events are keyed by their optional
``event_id``. The session keeps a bounded number of replies.
"""

from __future__ import annotations

from callkit.contracts.dialog import CallStarted, DialogReply, Event, UserInterrupted, UserUtterance
from policy_engine.session import Session


def event_key(event: Event) -> str | None:
    if isinstance(event, UserUtterance):
        return f"utterance:{event.segment_id}"
    if isinstance(event, UserInterrupted) and event.utterance is not None:
        return f"utterance:{event.utterance.segment_id}"
    if isinstance(event, CallStarted):
        return "call.started"
    if event.event_id:
        return f"{event.type}:{event.event_id}"
    return None


def stored_reply(session: Session, key: str | None) -> DialogReply | None:
    """The reply a retried event gets again, marked as replayed; None for a new event."""
    if key is None or key not in session.responses:
        return None
    stored = DialogReply.model_validate(session.responses[key])
    return stored.model_copy(update={"replayed": True})


def remember(session: Session, key: str | None, reply: DialogReply) -> None:
    if key is not None:
        session.remember(key, reply.model_dump(mode="json"))
