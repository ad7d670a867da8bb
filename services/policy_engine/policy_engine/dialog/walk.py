"""Finding the way through the script over what is known, without saying or changing anything."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from policy_engine.script import Script, StateDef, Transition


def condition_holds(
    condition: str | None,
    slots: dict[str, Any],
    direction: str = "inbound",
    *,
    no_caller_id: bool = False,
) -> bool:
    """Whether a script condition holds on a call in ``direction`` with these ``slots``;
    ``no_caller_id``: the caller id is no number (see ``dialog.caller.caller_number``).

    ``caller:withheld`` holds on an inbound call that leaves no number to call back: no caller
    id and no ``phone`` given (a call the clinic placed has the number it dialled)."""
    if condition is None:
        return True
    kind, slot = condition.split(":", 1)
    if kind == "direction":
        return slot == direction
    if kind == "caller":  # "withheld", the one caller condition
        return direction == "inbound" and no_caller_id and slots.get("phone") is None
    value = slots.get(slot)
    if kind == "filled":
        return value is not None
    if kind == "missing":
        return value is None
    if kind == "yes":
        return value is True
    return value is False  # "no"


def taken(
    state: StateDef,
    slots: dict[str, Any],
    direction: str = "inbound",
    *,
    no_caller_id: bool = False,
) -> Transition:
    """The state's first transition whose condition holds (validated scripts end on a default)."""
    for tr in state.transitions:
        if condition_holds(tr.when, slots, direction, no_caller_id=no_caller_id):
            return tr
    raise AssertionError("validated scripts always end with a default transition")


def say_of(
    state: StateDef,
    slots: dict[str, Any],
    direction: str = "inbound",
    *,
    no_caller_id: bool = False,
) -> tuple[int, dict[str, str]]:
    """The state's text for this call: its first variant whose condition holds (its number,
    from 1), else its ``say`` (0)."""
    for n, variant in enumerate(state.variants, 1):
        if condition_holds(variant.when, slots, direction, no_caller_id=no_caller_id):
            return n, variant.say
    return 0, state.say


def walk(
    script: Script,
    slots: dict[str, Any],
    said: list[str],
    skipped: Collection[str] = (),
    *,
    direction: str = "inbound",
    no_caller_id: bool = False,
) -> tuple[list[str], str | None]:
    """Walk the script from the call's start over what is known (a skipped slot counts as
    answered).

    Returns the states passed and where the walk stops: the first question still open, the
    first announcement not yet made, or the exit the answers lead to (None at the end).
    """
    path: list[str] = []
    current: str | None = script.start_for(direction)
    while current is not None and current not in path:
        state = script.states[current]
        if state.kind == "end":
            return path, None
        if (
            state.kind == "exit"
            or (
                state.kind == "question"
                and any(slots.get(s) is None and s not in skipped for s in state.slots)
            )
            or (state.kind == "announce" and current not in said)
        ):
            return path, current
        path.append(current)
        current = taken(state, slots, direction, no_caller_id=no_caller_id).to
    return path, None
