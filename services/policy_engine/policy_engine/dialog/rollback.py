"""The barge-in rollback: what stands of the agent's last turn once the caller cut in.

The bridge reports what the caller heard (``heard_text``): the words of every sentence played
out in full, then the first words of the one cut short. It is taken as given. Sentences heard
in full stand; from the first one cut short, announcements count as not made and questions as
not asked, and the call goes back to the first of them, so the script says them again; an
announcement marked ``repeat_when_cut: false`` (the greeting) counts as made.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from policy_engine.script import StateDef
from policy_engine.session import Sentence, Session

_PUNCTUATION = re.compile(r"[^\w]")


def _words(text: str) -> list[str]:
    return [w for w in (_PUNCTUATION.sub("", word.lower()) for word in text.split()) if w]


def heard_in_full(reply: Sequence[Sentence], heard_text: str) -> int:
    """How many of the reply's sentences, from the first, are in ``heard_text`` word for word."""
    heard = _words(heard_text)
    at = 0
    for i, sentence in enumerate(reply):
        words = _words(sentence.text)
        if heard[at : at + len(words)] != words:
            return i
        at += len(words)
    return len(reply)


def roll_back(session: Session, heard_text: str, states: Mapping[str, StateDef]) -> Session:
    """The session as it stands after the barge-in (the given one is left as it was)."""
    out = session.model_copy(deep=True)
    if out.transcript and out.transcript[-1].role == "agent":
        line = out.transcript[-1]
        line.text = heard_text
        line.interrupted = True
    cut = heard_in_full(out.last_reply, heard_text)
    if cut == len(out.last_reply):
        return out
    back_to: str | None = None
    for sentence in out.last_reply[cut:]:
        state = states.get(sentence.state or "")
        if state is None or sentence.source not in ("say", "reprompt"):
            continue
        if state.kind == "announce" and not state.repeat_when_cut:
            continue  # a greeting the caller spoke over: it has done its work
        if state.kind == "announce" and state.id in out.said:
            out.said.remove(state.id)
        if state.kind == "question" and out.asked.get(state.id):
            out.asked[state.id] -= 1
            if out.misses.get(state.id):
                out.misses[state.id] -= 1  # a question cut short has not failed
            if out.unanswered.get(state.id):
                out.unanswered[state.id] -= 1
        if back_to is None and state.kind in ("announce", "question"):
            back_to = state.id
    if back_to is not None:
        out.state = back_to
    out.last_reply = out.last_reply[:cut]
    return out
