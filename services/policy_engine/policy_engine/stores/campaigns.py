"""The dialer's campaign call context in Redis: ``campaign:call:{call_id}``, read only."""

from __future__ import annotations

import logging

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from callkit.contracts.campaign import CampaignCall, call_key
from callkit.errors import DependencyUnavailable

log = logging.getLogger("policy_engine.campaigns")


class RedisCampaignCalls:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def get(self, call_id: str) -> CampaignCall | None:
        try:
            raw = await self.redis.get(call_key(call_id))
        except (RedisError, OSError) as exc:
            raise DependencyUnavailable(f"redis: {type(exc).__name__}") from exc
        if raw is None:
            return None
        try:
            return CampaignCall.model_validate_json(raw)
        except ValidationError as exc:
            # Written by another version of the dialer, perhaps: the generic opening will do.
            log.warning(
                "campaign call context unreadable",
                extra={"call_id": call_id, "errors": exc.error_count()},
            )
            return None
