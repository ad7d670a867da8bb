"""The dialer's tables as SQLAlchemy models: what the migrations create and the store queries.

The migrations in ``dialer/migrations/versions`` are written out by hand and frozen; a test
compares them with these models, so the two cannot drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

#: Constraint names are spelled out so migrations can refer to them on every database.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: JSON on SQLite, JSONB (indexable, compact) on PostgreSQL.
Document = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A moment in UTC: aware datetimes in and out, on every database.

    PostgreSQL keeps ``timestamptz``; SQLite has no zone, so it stores the UTC wall time and this
    type puts the zone back on the way out. It is the one place where that conversion happens;
    a naive datetime is refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"a naive datetime ({value.isoformat()}) cannot be stored; use UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    #: The whole CampaignSpec as its JSON (``model_dump(mode="json")``).
    spec: Mapped[dict[str, Any]] = mapped_column(Document)
    state: Mapped[str] = mapped_column(String(16), index=True)
    state_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (
        # One number once per campaign: a re-imported file adds only what is new.
        UniqueConstraint("campaign_id", "phone"),
        # What claim_due reads: a campaign's due contacts, in order.
        Index(
            "ix_contacts_campaign_id_state_next_attempt_at",
            "campaign_id",
            "state",
            "next_attempt_at",
        ),
        # What expired_leases reads: contacts in a call whose lease ran out.
        Index("ix_contacts_state_lease_until", "state", "lease_until"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    #: The line of the imported file (the header is line 1).
    row: Mapped[int] = mapped_column(Integer)
    #: E.164; the do-not-call list and the frequency caps look numbers up in this form.
    phone: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str | None] = mapped_column(Text)
    timezone: Mapped[str | None] = mapped_column(String(64))
    consent: Mapped[str | None] = mapped_column(Text)
    fields: Mapped[dict[str, str]] = mapped_column(Document)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer)
    failed_retries: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Attempt(Base):
    __tablename__ = "attempts"
    __table_args__ = (
        # What the frequency caps read: one number's attempts in the last month.
        Index("ix_attempts_phone_started_at", "phone", "started_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contact_id: Mapped[str] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(16))
    #: 1 for a contact's first attempt; equals the contact's ``attempts`` for its latest.
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hangup_cause: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(32))
    #: The originate's channel UUID.
    call_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    #: The dialer replica that made the call.
    owner: Mapped[str] = mapped_column(String(200))


class DoNotCall(Base):
    __tablename__ = "dnc"

    phone: Mapped[str] = mapped_column(String(16), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Who put it there: ``api``, ``opt-out`` (the callee asked during a call), ``import``…
    source: Mapped[str] = mapped_column(String(64))
