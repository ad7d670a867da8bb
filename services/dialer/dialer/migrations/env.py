"""Alembic's entry point for the dialer's database.

``Store.migrate()`` passes its own connection (already in a transaction, holding the migration
lock) in ``config.attributes["connection"]``. From the command line the URL comes from
``-x url=…``, else ``DIALER_DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from dialer.store.database import connect, migrating
from dialer.store.schema import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def _run(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get(
        "DIALER_DATABASE_URL"
    )
    if not url:
        raise SystemExit("give the database URL: -x url=… or DIALER_DATABASE_URL")
    return url


async def _run_from_command_line() -> None:
    engine = connect(_url())
    try:
        async with migrating(engine) as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


given = config.attributes.get("connection")
if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif given is not None:
    _run(given)
else:
    asyncio.run(_run_from_command_line())
