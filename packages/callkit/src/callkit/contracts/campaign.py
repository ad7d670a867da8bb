"""What the dialer tells the rest of the stack about a campaign call it places.

Before each originate the dialer writes :class:`CampaignCall` as JSON to
``campaign:call:{call_id}`` (the call id is the channel's uuid, which is the attempt's id), with a
TTL of the longest call. The policy engine reads it on ``call.started`` of an outbound call: the
campaign's purpose and the contact's fields (the CSV's extra columns, e.g. the study asked about)
shape the outbound opening, and slots the contact list already knows are not asked again. The
channel variables cannot carry such free text safely (commas, braces, quotes), so it travels
here instead.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from callkit.contracts.streams import CAMPAIGN_PREFIX, key


class CampaignCall(BaseModel):
    model_config = ConfigDict(extra="ignore")

    call_id: str = Field(min_length=1, max_length=128)
    campaign_id: str
    contact_id: str
    attempt: int = Field(ge=1, description="Which attempt at this contact the call is.")
    campaign_name: str
    purpose: Literal["informational", "service", "marketing"]
    locale: str = Field(max_length=8)
    phone: str = Field(description="The number dialled, E.164.")
    name: str | None = None
    on_voicemail: Literal["message", "hangup"] = Field(
        "message",
        description="On a machine: leave the script's message after the beep, or hang up.",
    )
    fields: dict[str, str] = Field(
        default_factory=dict, description="The contact list's other columns, lower-case names."
    )


def call_key(call_id: str) -> str:
    """``campaign:call:{call_id}``."""
    return key(CAMPAIGN_PREFIX, "call", call_id)
