"""What FreeSWITCH's Hangup-Cause of an unanswered call means for the contact and the trunk.

An answered call takes the dialog's outcome instead; these causes only classify the calls that
never reached anyone. The groups follow how each cause should be retried: a busy line soon, an
unanswered phone at another time of day, a network failure once (and it counts against the
trunk's health), a number that does not exist or a callee who refused never.
"""

from __future__ import annotations

from typing import Final

from callkit.contracts.outcome import Status

_GROUPS: Final[dict[Status, frozenset[str]]] = {
    "busy": frozenset({"USER_BUSY"}),
    "no_answer": frozenset(
        {
            "NO_ANSWER",
            "NO_USER_RESPONSE",  # SIP 480, or nothing heard back from the phone
            "ORIGINATOR_CANCEL",  # the originate's ring timeout cancelled the ringing leg
            "ALLOTTED_TIMEOUT",
            "SUBSCRIBER_ABSENT",  # a mobile switched off or out of coverage
        }
    ),
    "failed": frozenset(
        {
            "NORMAL_TEMPORARY_FAILURE",
            "SWITCH_CONGESTION",
            "NORMAL_CIRCUIT_CONGESTION",
            "DESTINATION_OUT_OF_ORDER",
            "NETWORK_OUT_OF_ORDER",
            "RECOVERY_ON_TIMER_EXPIRE",  # SIP 408/504: the carrier never answered the INVITE
            "GATEWAY_DOWN",
            "NO_ROUTE_TRANSIT_NET",
            "REQUESTED_CHAN_UNAVAIL",
            "SERVICE_UNAVAILABLE",
            "PROGRESS_TIMEOUT",
            "MEDIA_TIMEOUT",
        }
    ),
    "invalid_number": frozenset(
        {
            "UNALLOCATED_NUMBER",  # SIP 404
            "NUMBER_CHANGED",  # SIP 410
            "INVALID_NUMBER_FORMAT",  # SIP 484
            "NO_ROUTE_DESTINATION",
            "INCOMPATIBLE_DESTINATION",
        }
    ),
    "rejected": frozenset({"CALL_REJECTED"}),  # SIP 403/603: refused by the callee or network
}

_OUTCOME_BY_CAUSE: Final[dict[str, Status]] = {
    cause: status for status, causes in _GROUPS.items() for cause in causes
}


def outcome_for_cause(cause: str) -> Status:
    """The outcome of an unanswered call that ended with ``cause``.

    An unknown cause is ``failed``: retried once, which neither loses a reachable contact nor
    dials a broken one forever.
    """
    return _OUTCOME_BY_CAUSE.get(_normal(cause), "failed")


def is_trunk_failure(cause: str) -> bool:
    """Whether ``cause`` says the network or the carrier failed, which the trunk breaker counts.

    Only the known network failures count: an unknown cause may be the dialer's own doing
    (a cancelled originate, a shutdown) and must not pause a healthy trunk.
    """
    return _normal(cause) in _GROUPS["failed"]


def _normal(cause: str) -> str:
    return cause.strip().upper()
