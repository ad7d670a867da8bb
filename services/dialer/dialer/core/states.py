"""The states a campaign and its contacts go through, shared by the core, the store and the API."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class CampaignState(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


#: Allowed transitions (start, pause, resume, cancel, and completion when no contact is left).
CAMPAIGN_TRANSITIONS: Final[dict[CampaignState, frozenset[CampaignState]]] = {
    CampaignState.DRAFT: frozenset({CampaignState.RUNNING, CampaignState.CANCELLED}),
    CampaignState.RUNNING: frozenset(
        {CampaignState.PAUSED, CampaignState.COMPLETED, CampaignState.CANCELLED}
    ),
    CampaignState.PAUSED: frozenset({CampaignState.RUNNING, CampaignState.CANCELLED}),
    CampaignState.COMPLETED: frozenset(),
    CampaignState.CANCELLED: frozenset(),
}


class ContactState(StrEnum):
    PENDING = "pending"  # never dialled yet, due now (when its window is open)
    DIALING = "dialing"  # claimed by a dialer replica (a lease), originate in flight
    IN_CALL = "in_call"  # answered; the dialog runs
    SCHEDULED = "scheduled"  # waiting for ``next_attempt_at`` (a retry, a window, a cap)
    DONE = "done"  # finished with an outcome
    SKIPPED = "skipped"  # never to be dialled (do-not-call, invalid, compliance), with a reason


#: States in which a contact may not be claimed again.
ACTIVE_STATES: Final = frozenset({ContactState.DIALING, ContactState.IN_CALL})
FINAL_STATES: Final = frozenset({ContactState.DONE, ContactState.SKIPPED})


class Purpose(StrEnum):
    INFORMATIONAL = "informational"
    SERVICE = "service"
    MARKETING = "marketing"


class Profile(StrEnum):
    """A compliance profile: the calling rules of a jurisdiction."""

    US = "us"
    UK = "uk"
    RU = "ru"
    NONE = "none"
