"""Starting and stopping the stack's services for the benchmarks (not a benchmark itself)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def start_service(
    module: str,
    port: int,
    env: dict[str, str] | None = None,
    *,
    log: Path | None = None,
    timeout_s: float = 120,
) -> subprocess.Popen[bytes]:
    """`python -m <module>` with ``env`` added; returns once its /ready answers 200."""
    output = log.open("wb") if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=output,
        stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            where = f"; see {log}" if log is not None else ""
            raise SystemExit(f"{module} did not start{where}")
        time.sleep(0.1)


def stop_service(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
