"""Each service runs as `python -m <service>` on its port, logs JSON, and stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from openai import OpenAI


@contextmanager
def service(
    module: str, env: dict[str, str], port: int, timeout_s: float = 30
) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", module],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise AssertionError(
                    f"{module} exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}"
                )
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{module} did not answer /health within {timeout_s}s")
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
        for pipe in (proc.stdout, proc.stderr):
            if pipe:
                pipe.close()


@pytest.mark.parametrize(
    ("module", "prefix"),
    [
        ("policy_engine", "POLICY_"),
        ("notifier", "NOTIFY_"),
        ("fs_bridge", "BRIDGE_"),
        ("tts_gateway", "TTS_"),
    ],
)
def test_service_serves_on_its_configured_port_and_stops_on_sigterm(
    module: str, prefix: str, free_port: int, redis_url: str, embedded_llm: str
) -> None:
    env = {
        f"{prefix}PORT": str(free_port),
        "REDIS_URL": redis_url,
        "BRIDGE_ESL_PASSWORD": "test-pass",
        "POLICY_LLM_BASE_URL": embedded_llm,
    }
    with service(module, env, free_port) as proc:
        ready = httpx.get(f"http://127.0.0.1:{free_port}/ready", timeout=5)
        assert ready.status_code == 200, ready.json()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)
        # uvicorn drains, runs the shutdown, then re-raises the signal so the exit status tells why.
        assert proc.returncode in (0, -signal.SIGTERM)
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert any(r["msg"] == "service starting" and r["port"] == free_port for r in records)
    assert all(r["service"] == module for r in records)
    assert any(
        r["msg"] == "Application shutdown complete." for r in records
    )  # graceful, not killed
    assert "test-pass" not in stderr


def test_invalid_configuration_exits_2_naming_the_variable() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fs_bridge"],
        env={k: v for k, v in os.environ.items() if k != "BRIDGE_ESL_PASSWORD"}
        | {"BRIDGE_PORT": "0"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "BRIDGE_PORT: Input should be greater than or equal to 1" in done.stderr
    assert "BRIDGE_ESL_PASSWORD: Field required" in done.stderr


def test_help_lists_the_environment_variables() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tts_gateway", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "TTS_PORT" in done.stdout
    assert "REDIS_URL" in done.stdout
    assert "8082" in done.stdout


def test_embedded_llm_answers_the_openai_client(free_port: int) -> None:
    with service("llm", {"LLM_PORT": str(free_port)}, free_port, timeout_s=60):
        client = OpenAI(
            base_url=f"http://127.0.0.1:{free_port}/v1", api_key="unused", max_retries=0
        )
        assert [m.id for m in client.models.list().data] == ["clinic-agent"]
        reply = client.chat.completions.create(
            model="clinic-agent",
            messages=[{"role": "user", "content": "Reply with the single word: yes"}],
            max_tokens=8,
            temperature=0,
        )
        assert reply.choices[0].message.content
        assert reply.usage is not None
        assert reply.usage.completion_tokens > 0
        assert (
            httpx.get(f"http://127.0.0.1:{free_port}/ready", timeout=5).json()["status"] == "ready"
        )
