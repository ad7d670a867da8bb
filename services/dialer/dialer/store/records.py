"""What the store hands out: plain frozen records, detached from any session or connection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from dialer.core.states import CampaignState, ContactState
from dialer.spec import CampaignSpec

#: A contact's reason and outcome when its number is on the do-not-call list.
DNC_REASON: Final = "do-not-call"
DNC_OUTCOME: Final = "skipped_dnc"


@dataclass(frozen=True, slots=True)
class CampaignRecord:
    id: str
    name: str
    spec: CampaignSpec
    state: CampaignState
    #: Why it is in its state (a pause by the circuit breaker, say); None when nothing to say.
    reason: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class ContactRecord:
    id: str
    campaign_id: str
    row: int
    phone: str
    name: str | None
    timezone: str | None
    consent: str | None
    fields: dict[str, str]
    state: ContactState
    #: Why it waits (the last attempt's outcome, a closed window) or why it was skipped.
    reason: str | None
    #: The final outcome, once the contact is done or skipped.
    outcome: str | None
    attempts: int
    failed_retries: int
    next_attempt_at: datetime | None
    lease_owner: str | None
    lease_until: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    id: str
    contact_id: str
    campaign_id: str
    phone: str
    number: int
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    hangup_cause: str | None
    outcome: str | None
    call_id: str | None
    owner: str


@dataclass(frozen=True, slots=True)
class Claim:
    """A contact a replica may dial now: it holds the contact's lease until ``lease_until``."""

    contact_id: str
    attempt_id: str
    campaign_id: str
    phone: str
    name: str | None
    timezone: str | None
    consent: str | None
    fields: dict[str, str]
    attempt_number: int
    owner: str
    lease_until: datetime
