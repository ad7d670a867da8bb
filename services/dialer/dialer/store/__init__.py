"""The dialer's durable store: campaigns, contacts, attempts and the do-not-call list.

``Store.open(url)`` takes ``sqlite+aiosqlite:///path/file.db`` (one machine) or
``postgresql+asyncpg://user@host:port/db`` (compose, several replicas); ``await store.migrate()``
brings the schema up to date.
"""

from dialer.store.records import (
    DNC_OUTCOME,
    DNC_REASON,
    AttemptRecord,
    CampaignRecord,
    Claim,
    ContactRecord,
)
from dialer.store.repository import CLAIMABLE, Store

__all__ = [
    "CLAIMABLE",
    "DNC_OUTCOME",
    "DNC_REASON",
    "AttemptRecord",
    "CampaignRecord",
    "Claim",
    "ContactRecord",
    "Store",
]
