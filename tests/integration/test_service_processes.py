"""Each service runs as `python -m <service>` on its port, logs JSON, and stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from openai import OpenAI
from serving import running_service


@pytest.mark.parametrize(
    ("module", "prefix"),
    [
        ("policy_engine", "POLICY_"),
        ("notifier", "NOTIFY_"),
        ("fs_bridge", "BRIDGE_"),
        ("tts_gateway", "TTS_"),
        ("dialer", "DIALER_"),
    ],
)
def test_service_serves_on_its_configured_port_and_stops_on_sigterm(
    module: str,
    prefix: str,
    free_port: int,
    redis_url: str,
    embedded_llm: str,
    esl_emulator: tuple[int, str],
    tmp_path: Path,
) -> None:
    env = {
        f"{prefix}PORT": str(free_port),
        "REDIS_URL": redis_url,
        "BRIDGE_ESL_PORT": str(esl_emulator[0]),
        "BRIDGE_ESL_PASSWORD": esl_emulator[1],
        "BRIDGE_FORK_PASSWORD": "test-pass",
        "POLICY_LLM_BASE_URL": embedded_llm,
        "TTS_PRERENDER": "false",  # prerender readiness: tests/integration/test_tts_gateway.py
        "DIALER_ESL_PORT": str(esl_emulator[0]),
        "DIALER_ESL_PASSWORD": esl_emulator[1],
        "DIALER_API_TOKEN": "service-test-token-0123",
        "DIALER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'dialer.db'}",
    }
    with running_service(module, env, free_port, ready_path="/ready") as proc:
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
    assert esl_emulator[1] not in stderr


def test_invalid_configuration_exits_2_naming_the_variable() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fs_bridge"],
        env={k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
        | {"BRIDGE_PORT": "0"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "BRIDGE_PORT: Input should be greater than or equal to 1" in done.stderr
    assert "BRIDGE_ESL_PASSWORD: Field required" in done.stderr
    assert "BRIDGE_FORK_PASSWORD: Field required" in done.stderr


def test_an_unknown_model_stops_start_up_with_the_known_names() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "asr_gateway"],
        env={**os.environ, "ASR_MODEL": "whisper-giant"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "unknown model 'whisper-giant'; the registry has:" in done.stderr
    assert "Traceback" not in done.stderr


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
    with running_service("llm", {"LLM_PORT": str(free_port)}, free_port, timeout_s=60):
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
