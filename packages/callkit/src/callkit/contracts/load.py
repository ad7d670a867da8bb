"""``bridge:{replica}:load``: a bridge's calls in progress and its limit, read by the dialer.

The bridge sets :class:`BridgeLoad` as JSON, ``{"active": n, "max": m}``, every second and
whenever a call starts or ends, with a 5 s expiry, so a bridge that dies stops counting on its
own; one that is stopping says ``"max": 0`` until its key expires. The dialer reads every
bridge's value before it claims contacts and holds its pacing while all of them are full. A bridge
may report more calls than its limit (it took them before the limit dropped). A reader skips a
value it cannot parse: one bridge's bad report must never stop the dialer.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from callkit.contracts.streams import BRIDGE_PREFIX, key


class BridgeLoad(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    active: int = Field(ge=0, description="Calls in progress on this bridge.")
    max: int = Field(ge=0, description="BRIDGE_MAX_CALLS; 0 while the bridge is stopping.")

    def value(self) -> str:
        """The JSON the bridge sets under its key."""
        return self.model_dump_json()


def load_key(replica: str) -> str:
    """``bridge:{replica}:load``."""
    return key(BRIDGE_PREFIX, replica, "load")


def parse_value(raw: bytes | str) -> BridgeLoad | None:
    """A bridge's load from the value under its key; ``None`` when it is not one."""
    try:
        return BridgeLoad.model_validate_json(raw)
    except ValidationError:
        return None
