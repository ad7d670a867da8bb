"""`python -m notifier.admin`: status of the outcome stream, replay of dead entries, backfill."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from callkit.contracts.outcome import ENTRY_FIELD
from callkit.errors import ConfigError
from notifier.settings import NotifySettings


async def status(r: aioredis.Redis, s: NotifySettings) -> dict[str, Any]:
    info: dict[str, Any] = {
        "stream": s.stream,
        "group": s.group,
        "entries": await r.xlen(s.stream),
        "dead": await r.xlen(s.dead_stream),
        "lag": None,
        "pending": None,
        "consumers": None,
    }
    try:
        for group in await r.xinfo_groups(s.stream):
            if group["name"].decode() == s.group:
                info.update(
                    lag=group.get("lag"),
                    pending=group.get("pending"),
                    consumers=group.get("consumers"),
                )
    except ResponseError:
        pass  # no stream yet
    return info


async def replay_dead(r: aioredis.Redis, s: NotifySettings, limit: int) -> int:
    """Put dead entries back on the stream (after the cause was fixed); returns how many."""
    moved = 0
    dead: Any = await r.xrange(s.dead_stream, count=limit)
    for entry_id, fields in dead:
        outcome = fields.get(ENTRY_FIELD.encode())
        if outcome is None:
            continue  # nothing that could ever be written
        await r.xadd(s.stream, {ENTRY_FIELD: outcome})
        await r.xdel(s.dead_stream, entry_id)
        moved += 1
    return moved


async def backfill(r: aioredis.Redis, s: NotifySettings, from_id: str) -> None:
    """Deliver the stream again from ``from_id``; rows already in the sink are not written twice."""
    await r.xgroup_setid(s.stream, s.group, from_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notifier.admin", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "status", help="stream length, consumer-group lag and pending entries, dead entries"
    )
    replay = sub.add_parser(
        "replay-dead", help="move entries from the dead stream back to the outcome stream"
    )
    replay.add_argument("--limit", type=int, default=1000)
    fill = sub.add_parser(
        "backfill", help="re-deliver the stream from an entry id (0 = from the start)"
    )
    fill.add_argument("--from", dest="from_id", default="0")
    args = parser.parse_args(argv)
    try:
        settings = NotifySettings.load()
    except ConfigError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2

    async def run() -> int:
        r = aioredis.Redis.from_url(settings.redis_url)
        try:
            if args.command == "status":
                for key, value in (await status(r, settings)).items():
                    print(f"{key:<10} {value}")
            elif args.command == "replay-dead":
                print(f"replayed {await replay_dead(r, settings, args.limit)} dead entries")
            else:
                await backfill(r, settings, args.from_id)
                print(
                    f"group {settings.group} will re-deliver {settings.stream} from {args.from_id}"
                )
            return 0
        finally:
            await r.aclose()

    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
