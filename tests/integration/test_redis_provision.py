"""Setup finds a Redis, or starts the project's own redis-server when none answers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from callkit.errors import DependencyUnavailable
from callkit.redis_provision import answers, ensure


def stop(run_dir: Path) -> None:
    pidfile = run_dir / "redis" / "redis.pid"
    if pidfile.exists():
        try:
            os.kill(int(pidfile.read_text()), signal.SIGTERM)
        except ProcessLookupError:
            pass


def test_an_answering_redis_is_used_as_is(redis_url: str, tmp_path: Path) -> None:
    assert ensure(tmp_path, default_url=redis_url) == redis_url
    assert not (tmp_path / "redis").exists()  # nothing was started


def test_own_server_is_started_when_none_answers_and_reused_after(
    tmp_path: Path, dead_port: int
) -> None:
    nobody = f"redis://127.0.0.1:{dead_port}/0"
    try:
        url = ensure(tmp_path, default_url=nobody)
        assert url != nobody
        assert answers(url)
        assert (tmp_path / "redis.url").read_text().strip() == url
        assert ensure(tmp_path, default_url=nobody) == url  # second run: same server
    finally:
        stop(tmp_path)


def test_a_configured_redis_url_that_does_not_answer_is_an_error(
    tmp_path: Path, dead_port: int
) -> None:
    url = f"redis://:pa55word@127.0.0.1:{dead_port}/0"
    with pytest.raises(DependencyUnavailable, match="REDIS_URL is set but nothing answers") as err:
        ensure(tmp_path, env_url=url)
    assert "pa55word" not in err.value.message


def test_cli_prints_the_url_for_scripts(redis_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "callkit.redis_provision", "--run-dir", "/nonexistent"],
        capture_output=True,
        text=True,
        env={**os.environ, "REDIS_URL": redis_url},
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == redis_url
