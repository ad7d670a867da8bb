"""Shared fixtures: markers by folder, a real Redis and PostgreSQL, free ports, the repository root."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from serving import running_service

from callkit import postgres_provision
from callkit.redis_provision import ensure
from callkit.redis_provision import free_port as find_free_port

ROOT = Path(__file__).resolve().parent.parent
_MARKER_BY_FOLDER = {
    "unit": "unit",
    "api": "api",
    "integration": "integration",
    "e2e": "e2e",
    "resilience": "resilience",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(str(item.fspath)).relative_to(ROOT / "tests").parts[0]
        marker = _MARKER_BY_FOLDER.get(folder)
        if marker:
            item.add_marker(getattr(pytest.mark, marker))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A Redis that answers: REDIS_URL, the machine's 6379, or the project's own server."""
    return ensure(ROOT / ".run", env_url=os.environ.get("REDIS_URL") or None)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of this test session's own, dropped afterwards, in the form the
    dialer's store takes (postgresql+asyncpg://). The server is DATABASE_TEST_URL's, the
    machine's 5432, or the project's own cluster."""
    server = postgres_provision.ensure(
        ROOT / ".run", env_url=os.environ.get("DATABASE_TEST_URL") or None
    )
    name = f"dialer_test_{uuid.uuid4().hex[:12]}"
    postgres_provision.create_database(server, name)
    try:
        yield postgres_provision.sqlalchemy_url(server, database=name)
    finally:
        postgres_provision.drop_database(server, name)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind the dialer's store runs on: an SQLite file, then the
    session's PostgreSQL database with its schema emptied."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'dialer.db'}"
    url: str = request.getfixturevalue("postgres_url")
    postgres_provision.execute(url, "DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    return url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    """A unique key namespace for one test; its keys are deleted afterwards."""
    import redis as syncredis

    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = syncredis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def free_port() -> int:
    return find_free_port()


@pytest.fixture
def dead_port() -> int:
    """A loopback port nothing listens on."""
    return find_free_port()


@pytest.fixture(scope="session")
def embedded_llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m llm` on a free port, as `make run-llm` starts it; yields its /v1 base URL."""
    port = find_free_port()
    log_path = tmp_path_factory.mktemp("llm") / "llm.log"
    with (
        log_path.open("w") as log,
        running_service(
            "llm", {"LLM_PORT": str(port)}, port, timeout_s=60, ready_path="/ready", output=log
        ),
    ):
        yield f"http://127.0.0.1:{port}/v1"


@pytest.fixture(scope="session")
def esl_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    """callsim's FreeSWITCH Event Socket (`callsim serve`) for services that need one.

    Ready once its control port answers, which it opens after the Event Socket."""
    esl_port, control_port, password = find_free_port(), find_free_port(), "emulated-esl"
    log_path = tmp_path_factory.mktemp("callsim") / "callsim.log"
    with running_service(
        "callsim",
        {},
        control_port,
        args=[
            "serve",
            "--esl-port",
            str(esl_port),
            "--esl-password",
            password,
            "--control-port",
            str(control_port),
        ],
        ready_path="/health",
        output=log_path,
    ):
        yield esl_port, password
