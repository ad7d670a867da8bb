"""The graph's typed state: what flows between the nodes within one turn.

The call's session is not graph state: it is loaded before the run, reaches the nodes through
the run's context (``dialog/context.py``) and is saved after it.
"""

from __future__ import annotations

from typing import Literal, TypedDict

Entry = Literal["understand", "silence", "resume"]


class DialogState(TypedDict, total=False):
    entry: Entry
    text: str
    goto: str  # the next node; a router reads nothing else
    steps: int
