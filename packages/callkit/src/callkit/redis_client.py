"""Redis connections for the services: one async client per process, health checks, safe URLs."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from callkit.errors import DependencyUnavailable


def connect(url: str, *, timeout_s: float = 2.0, max_connections: int = 64) -> aioredis.Redis:
    """An asyncio Redis client with bounded connect/read timeouts and response decoding off.

    Connections are made lazily, so building the client never blocks start-up; use
    :func:`check` (the readiness probe) to know whether Redis answers.
    """
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        health_check_interval=30,
        max_connections=max_connections,
        decode_responses=False,
    )


async def check(client: aioredis.Redis) -> None:
    """Raise DependencyUnavailable unless Redis answers PING."""
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        raise DependencyUnavailable(f"redis did not answer PING: {type(exc).__name__}") from exc


def redact_url(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))
