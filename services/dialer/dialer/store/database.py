"""Engines for the two databases the store runs on, and the migrations run from code.

SQLite (one machine, the default) and PostgreSQL (compose, several replicas) differ in how
writers are kept apart; this module hides that from the repository:

- SQLite: Python's driver would begin a transaction only at the first INSERT or UPDATE, so a
  transaction that reads and then writes could find its snapshot outdated and fail at once
  instead of waiting. The driver's own transaction handling is turned off and every write
  transaction begins with ``BEGIN IMMEDIATE``: it takes the file's write lock first (waiting up
  to the busy timeout for another writer), so what it reads stays true until it commits. The
  file runs in WAL mode, so readers never wait for a writer.
- PostgreSQL: ordinary READ COMMITTED transactions; the repository locks rows where it needs
  to (``FOR UPDATE SKIP LOCKED``) and makes its updates conditional.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from callkit.errors import ConfigError

MIGRATIONS: Final = Path(__file__).resolve().parent.parent / "migrations"
#: Execution option that marks an engine's transactions as writes (``BEGIN IMMEDIATE`` on SQLite).
WRITE: Final = "dialer_write"
#: How long an SQLite writer waits for another one before giving up.
SQLITE_BUSY_TIMEOUT_S: Final = 30.0
#: The PostgreSQL advisory lock that lets one replica at a time run the migrations.
MIGRATION_LOCK: Final = zlib.crc32(b"dialer.store.migrations")

# Alembic keeps the migration being run in a module-level proxy, so two migrations in one process
# (two databases) must not interleave; one lock per event loop keeps them apart.
_alembic_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def parse(url: str) -> URL:
    """The URL if it names a database the store runs on; ConfigError says what is expected."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError; any failure means the same
        raise ConfigError(f"not a database URL: {exc}") from None
    if parsed.drivername not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise ConfigError(
            f"database URL scheme {parsed.drivername!r} is not supported; use "
            "sqlite+aiosqlite:///path/file.db or postgresql+asyncpg://user@host:port/db"
        )
    if parsed.drivername.startswith("sqlite") and parsed.database in (None, "", ":memory:"):
        raise ConfigError("an SQLite database must be a file (sqlite+aiosqlite:///path/file.db)")
    return parsed


def connect(url: str) -> AsyncEngine:
    """An async engine for ``url``, set up for its dialect (see the module docstring)."""
    parsed = parse(url)
    if parsed.get_backend_name() == "postgresql":
        return create_async_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10)
    assert parsed.database is not None
    Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # no BEGIN from the driver: ours, below
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def writer(engine: AsyncEngine) -> AsyncEngine:
    """The same engine (and pool), its transactions marked as writes."""
    return engine.execution_options(**{WRITE: True})


def alembic_config() -> Config:
    config = Config(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Run the migrations up to ``revision`` in one transaction, one replica at a time.

    On PostgreSQL the DDL is transactional and an advisory lock, held to the commit, makes a
    second replica wait and then find nothing left to do; on SQLite ``BEGIN IMMEDIATE`` does
    the same with the file's write lock.
    """
    loop = asyncio.get_running_loop()
    lock = _alembic_locks.setdefault(loop, asyncio.Lock())
    async with lock, migrating(engine) as conn:
        await conn.run_sync(_upgrade, revision)


@contextlib.asynccontextmanager
async def migrating(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A write transaction that holds the migration lock until it commits."""
    async with writer(engine).begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        yield conn


def _upgrade(conn: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = conn
    command.upgrade(config, revision)


async def current_revision(conn: AsyncConnection) -> str | None:
    """The revision the database is at (None before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    def read(sync: Connection) -> str | None:
        return MigrationContext.configure(sync).get_current_revision()

    return await conn.run_sync(read)
