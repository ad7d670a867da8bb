"""Fixtures that start real servers: the embedded LLM (once per session)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from callkit.redis_provision import free_port


@pytest.fixture(scope="session")
def embedded_llm() -> Iterator[str]:
    """`python -m llm` on a free port, as `make run-llm` starts it; yields its /v1 base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llm"],
        env={**os.environ, "LLM_PORT": str(port), "LOG_FORMAT": "json"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"python -m llm exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}"
                )
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("embedded LLM did not become ready in 60 s")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
