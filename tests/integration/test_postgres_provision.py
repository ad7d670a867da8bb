"""Setup finds a PostgreSQL, or starts the project's own cluster when none answers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from callkit import postgres_provision as provision
from callkit.errors import DependencyUnavailable

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server() -> str:
    """The PostgreSQL the rest of the suite uses (the machine's, or the project's own)."""
    return provision.ensure(ROOT / ".run", env_url=os.environ.get("DATABASE_TEST_URL") or None)


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The project's own cluster, started because nothing answers at the default URL."""
    run_dir = tmp_path_factory.mktemp("run")
    port = provision.free_port()
    nobody = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    try:
        url = provision.ensure(run_dir, default_url=nobody)
        assert url != nobody
        yield run_dir, url
    finally:
        provision.stop_cluster(run_dir)
        shutil.rmtree(provision.cluster_dir(run_dir), ignore_errors=True)


def test_an_answering_server_is_used_as_is(server: str, tmp_path: Path) -> None:
    assert provision.ensure(tmp_path, default_url=server) == server
    assert list(tmp_path.iterdir()) == []  # nothing was started or recorded


def test_own_cluster_is_started_when_none_answers_and_reused_after(
    own_cluster: tuple[Path, str],
) -> None:
    run_dir, url = own_cluster
    assert provision.answers(url)
    assert (run_dir / "postgres.url").read_text().strip() == url
    assert provision.execute(url, "SELECT current_user, version()")[0][0] == "postgres"
    nobody = f"postgresql://postgres@127.0.0.1:{provision.free_port()}/postgres"
    assert provision.ensure(run_dir, default_url=nobody) == url  # second run: same server


def test_a_stopped_own_cluster_is_started_again_with_its_data(
    own_cluster: tuple[Path, str],
) -> None:
    run_dir, url = own_cluster
    kept = provision.create_database(url, "kept_across_restart")
    provision.execute(kept, "CREATE TABLE t (v int); INSERT INTO t VALUES (7)")
    assert provision.stop_cluster(run_dir)
    assert not provision.answers(url)
    nobody = f"postgresql://postgres@127.0.0.1:{provision.free_port()}/postgres"
    assert provision.ensure(run_dir, default_url=nobody) == url  # the same port again
    assert provision.execute(kept, "SELECT v FROM t") == [["7"]]


def test_password_authentication_with_scram(own_cluster: tuple[Path, str]) -> None:
    run_dir, url = own_cluster
    hba = provision.cluster_dir(run_dir) / "data" / "pg_hba.conf"
    rule = "host all alice 127.0.0.1/32 scram-sha-256\n"
    if rule not in hba.read_text():
        hba.write_text(rule + hba.read_text())  # the first matching line decides
    provision.execute(url, "CREATE ROLE alice LOGIN PASSWORD 'p@ss:word'")
    provision.execute(url, "SELECT pg_reload_conf()")
    port = provision.Target.parse(url).port
    good = f"postgresql://alice:p%40ss%3Aword@127.0.0.1:{port}/postgres"
    assert provision.execute(good, "SELECT current_user") == [["alice"]]
    wrong = provision.problem(f"postgresql://alice:guess@127.0.0.1:{port}/postgres")
    assert wrong is not None
    assert "password authentication failed" in wrong
    missing = provision.problem(f"postgresql://alice@127.0.0.1:{port}/postgres")
    assert missing is not None
    assert "asks for a password" in missing

    done = subprocess.run(
        [sys.executable, "-m", "callkit.postgres_provision", "--run-dir", "/x", "--redacted"],
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_TEST_URL": good},
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"postgresql://alice:***@127.0.0.1:{port}/postgres"


def test_a_configured_url_that_does_not_answer_is_an_error(tmp_path: Path) -> None:
    url = f"postgresql://postgres:pa55word@127.0.0.1:{provision.free_port()}/postgres"
    with pytest.raises(DependencyUnavailable, match="DATABASE_TEST_URL is set but") as err:
        provision.ensure(tmp_path, env_url=url)
    assert "pa55word" not in err.value.message
    assert list(tmp_path.iterdir()) == []


def test_a_database_is_created_and_dropped_with_its_connections(server: str) -> None:
    name = f"provision_test_{os.getpid()}"
    url = provision.create_database(server, name)
    assert provision.execute(url, "SELECT current_database()") == [[name]]
    with provision._session(url) as open_session:  # a connection left open by a test
        provision.drop_database(server, name)
        with pytest.raises((ConnectionError, OSError, provision.ServerError)):
            open_session.query("SELECT 1")
    why = provision.problem(url)
    assert why is not None
    assert "does not exist" in why
    with pytest.raises(ValueError, match="not a plain database name"):
        provision.create_database(server, 'x"; DROP DATABASE postgres; --')


def test_cli_prints_the_url_for_scripts(server: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "callkit.postgres_provision", "--run-dir", "/nonexistent"],
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_TEST_URL": server},
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == server


def test_the_store_url_names_the_asyncpg_driver() -> None:
    url = "postgresql://bob:s3cret@db.local:6432/postgres?host=/run/pg"
    converted = provision.sqlalchemy_url(url, database="dialer")
    assert converted == "postgresql+asyncpg://bob:s3cret@db.local:6432/dialer?host=/run/pg"
    target = provision.Target.parse(converted)
    assert (target.host, target.port, target.user, target.database) == (
        "/run/pg",
        6432,
        "bob",
        "dialer",
    )
