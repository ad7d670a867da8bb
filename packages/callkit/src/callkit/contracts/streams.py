"""Redis stream names and key prefixes that more than one service spells."""

from __future__ import annotations

from typing import Final

#: One entry per finished call (:mod:`callkit.contracts.outcome`), read by the notifier.
CALLS_COMPLETED: Final = "calls:completed"
#: Entries the notifier could not map or write, with the reason; replayable.
CALLS_DEAD: Final = "calls:dead"
#: Live per-call events (:mod:`callkit.contracts.live`) for dashboards and the console.
CALLS_EVENTS: Final = "calls:events"
#: calls:events is trimmed (approximately) to this many entries.
CALLS_EVENTS_MAXLEN: Final = 10_000
#: Sorted set of call ids scored by when their outcome is due (epoch seconds): a call whose
#: ``call.ended`` never comes gets its outcome written from its session at that time.
CALLS_OUTCOME_DUE: Final = "calls:outcome_due"

# Key namespaces: a key is the prefix and its parts joined by ":" (see :func:`key`).
#: ``session:{call_id}``: a call's dialog session (JSON); ``session:{call_id}:lock`` its turn lock.
SESSION_PREFIX: Final = "session"
#: ``tts:{cache_key}``: cached synthesized audio.
TTS_PREFIX: Final = "tts"
#: ``appt:{modality}:{date}:{HH:MM}``: an appointment slot's hold or booking.
APPOINTMENT_PREFIX: Final = "appt"
#: ``campaign:{campaign_id}:*``: an outbound campaign's state.
CAMPAIGN_PREFIX: Final = "campaign"
#: ``bridge:{replica}:load``: a bridge's calls in progress and its limit
#: (:mod:`callkit.contracts.load`); the dialer holds its pacing while every bridge is full.
BRIDGE_PREFIX: Final = "bridge"


def key(prefix: str, *parts: str) -> str:
    """``key(SESSION_PREFIX, call_id)`` is ``session:{call_id}``."""
    return ":".join((prefix, *parts))
