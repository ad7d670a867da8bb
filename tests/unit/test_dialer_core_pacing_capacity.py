"""How many calls the dialer may place given the bridges' load: none while every bridge is full,
never more than the free places, and as many as before when no bridge reports."""

from __future__ import annotations

import pytest

from dialer.core.pacing import agent_capacity_budget


@pytest.mark.parametrize(
    ("loads", "budget", "pending", "expected"),
    [
        # No bridge reports (a dialer without one, or every key expired): dial as before.
        ([], 3, 0, 3),
        ([], 3, 5, 3),
        ([], 0, 0, 0),
        # One bridge.
        ([(4, 4)], 3, 0, 0),  # full: nothing this tick
        ([(5, 4)], 3, 0, 0),  # over its limit (lowered while calls ran)
        ([(3, 4)], 3, 0, 1),  # one free place caps the campaign's three
        ([(0, 4)], 3, 0, 3),  # room for more than the campaign wants
        ([(0, 4)], 0, 0, 0),  # the campaign's own slots are full
        # Calls placed and still ringing will need their places.
        ([(2, 4)], 3, 1, 1),
        ([(2, 4)], 3, 2, 0),
        ([(2, 4)], 3, 5, 0),
        # Several bridges: their free places add up.
        ([(4, 4), (4, 4)], 3, 0, 0),  # every bridge full
        ([(4, 4), (2, 4)], 3, 0, 2),
        ([(1, 4), (2, 4)], 10, 0, 5),
        # A stopping bridge says max 0; its calls do not take places on the others.
        ([(3, 0), (2, 4)], 3, 0, 2),
        ([(3, 0)], 3, 0, 0),
    ],
)
def test_the_budget_is_capped_at_the_free_places(
    loads: list[tuple[int, int]], budget: int, pending: int, expected: int
) -> None:
    assert agent_capacity_budget(loads, budget, pending=pending) == expected


def test_without_pending_calls_the_sum_of_free_places_is_the_cap() -> None:
    assert agent_capacity_budget([(1, 2), (0, 3)], 100) == 4
