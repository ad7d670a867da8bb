"""devstack's process handling with real processes: readiness, failed starts, SIGTERM then SIGKILL,
and a stale pid that must not be signalled."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

import devstack

STUBBORN = """
import signal, sys, time
from http.server import HTTPServer, SimpleHTTPRequestHandler
signal.signal(signal.SIGTERM, signal.SIG_IGN)
HTTPServer(("127.0.0.1", int(sys.argv[1])), SimpleHTTPRequestHandler).serve_forever()
"""


@pytest.fixture
def modules(tmp_path: Path) -> dict[str, str]:
    """A folder of small modules for ``python -m``, and the environment that finds them."""
    (tmp_path / "stubborn_server.py").write_text(STUBBORN)
    (tmp_path / "failing_service.py").write_text("import sys\nprint('no model')\nsys.exit(3)\n")
    return {"PYTHONPATH": str(tmp_path)}


def test_running_yields_a_ready_service_and_stops_it_after(free_port: int) -> None:
    with devstack.running(
        "http.server", {}, free_port, args=["--bind", "127.0.0.1", str(free_port)], ready_path="/"
    ) as proc:
        assert httpx.get(f"http://127.0.0.1:{free_port}/", timeout=5).status_code == 200
    assert proc.returncode is not None
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{free_port}/", timeout=1)


def test_a_service_that_exits_fails_the_start_naming_its_log(
    modules: dict[str, str], tmp_path: Path, free_port: int
) -> None:
    log = tmp_path / "logs" / "failing.log"
    with pytest.raises(devstack.StartError, match=r"exited with status 3; see .*failing\.log"):
        devstack.start("failing_service", modules, free_port, timeout_s=20, output=log)
    assert "no model" in log.read_text()


def test_a_service_that_ignores_sigterm_is_killed(modules: dict[str, str], free_port: int) -> None:
    proc = devstack.start(
        "stubborn_server", modules, free_port, args=[str(free_port)], ready_path="/"
    )
    started = time.monotonic()
    devstack.stop(proc, timeout_s=1)
    assert proc.returncode == -9
    assert time.monotonic() - started < 10


def test_a_stale_pid_running_something_else_is_not_signalled(
    modules: dict[str, str], free_port: int
) -> None:
    proc = devstack.start(
        "stubborn_server", modules, free_port, args=[str(free_port)], ready_path="/"
    )
    try:
        assert devstack.stop_pid(proc.pid, "policy_engine", timeout_s=1) is False
        assert proc.poll() is None
        assert devstack.stop_pid(proc.pid, "stubborn_server", timeout_s=1) is True
        assert proc.poll() is not None  # killed: it ignores SIGTERM
        assert devstack.stop_pid(proc.pid, "stubborn_server", timeout_s=1) is False
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)
