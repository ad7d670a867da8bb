"""Campaigns, their contacts, each call attempt, and the do-not-call list.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here rather than imported from the models, so that this revision never changes.
document = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("spec", document, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("updated_at", moment, nullable=False),
        sa.Column("started_at", moment, nullable=True),
        sa.Column("finished_at", moment, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
    )
    op.create_index("ix_campaigns_state", "campaigns", ["state"])

    op.create_table(
        "contacts",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("campaign_id", sa.String(36), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(16), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("consent", sa.Text(), nullable=True),
        sa.Column("fields", document, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("failed_retries", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", moment, nullable=True),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_until", moment, nullable=True),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("updated_at", moment, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_contacts"),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name="fk_contacts_campaign_id_campaigns",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("campaign_id", "phone", name="uq_contacts_campaign_id_phone"),
    )
    op.create_index(
        "ix_contacts_campaign_id_state_next_attempt_at",
        "contacts",
        ["campaign_id", "state", "next_attempt_at"],
    )
    op.create_index("ix_contacts_state_lease_until", "contacts", ["state", "lease_until"])
    op.create_index("ix_contacts_phone", "contacts", ["phone"])

    op.create_table(
        "attempts",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("contact_id", sa.String(36), nullable=False),
        sa.Column("campaign_id", sa.String(36), nullable=False),
        sa.Column("phone", sa.String(16), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("started_at", moment, nullable=False),
        sa.Column("answered_at", moment, nullable=True),
        sa.Column("ended_at", moment, nullable=True),
        sa.Column("hangup_cause", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("call_id", sa.String(64), nullable=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_attempts"),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name="fk_attempts_contact_id_contacts",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name="fk_attempts_campaign_id_campaigns",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("call_id", name="uq_attempts_call_id"),
    )
    op.create_index("ix_attempts_contact_id", "attempts", ["contact_id"])
    op.create_index("ix_attempts_phone_started_at", "attempts", ["phone", "started_at"])

    op.create_table(
        "dnc",
        sa.Column("phone", sa.String(16), nullable=False),
        sa.Column("added_at", moment, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("phone", name="pk_dnc"),
    )


def downgrade() -> None:
    op.drop_table("dnc")
    op.drop_table("attempts")
    op.drop_table("contacts")
    op.drop_table("campaigns")
