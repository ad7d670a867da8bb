"""Starting and stopping the stack's services for the benchmarks (not a benchmark itself)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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


#: The call path's services in start order: (name in ports/env, module).
CALL_STACK = (
    ("llm", "llm"),
    ("asr", "asr_gateway"),
    ("tts", "tts_gateway"),
    ("policy", "policy_engine"),
    ("bridge", "fs_bridge"),
)


def call_stack_env(
    redis_url: str, ports: dict[str, int], esl_password: str, fork_password: str, logs: Path
) -> dict[str, str]:
    """The environment that wires the call path's services to each other on ``ports``."""
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "LLM_PORT": str(ports["llm"]),
        "ASR_PORT": str(ports["asr"]),
        "TTS_PORT": str(ports["tts"]),
        "POLICY_PORT": str(ports["policy"]),
        "POLICY_LLM_BASE_URL": f"http://127.0.0.1:{ports['llm']}/v1",
        "POLICY_CALENDAR_NAMESPACE": f"bench-appt-{os.getpid()}-{time.time_ns()}",
        "BRIDGE_PORT": str(ports["bridge"]),
        "BRIDGE_ESL_PORT": str(ports["esl"]),
        "BRIDGE_ESL_PASSWORD": esl_password,
        "BRIDGE_FORK_PASSWORD": fork_password,
        "BRIDGE_ASR_URL": f"ws://127.0.0.1:{ports['asr']}/ws/transcribe",
        "BRIDGE_TTS_URL": f"http://127.0.0.1:{ports['tts']}",
        "BRIDGE_POLICY_URL": f"http://127.0.0.1:{ports['policy']}",
        "BRIDGE_RECORDINGS_DIR": str(logs / "recordings"),
    }


def start_call_stack(
    ports: dict[str, int], env: dict[str, str], logs: Path
) -> dict[str, subprocess.Popen[bytes]]:
    """Start every service of ``CALL_STACK``; on a failure, stop those already started."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, module in CALL_STACK:
            procs[name] = start_service(
                module, ports[name], env, log=logs / f"{name}.log", timeout_s=300
            )
    except BaseException:
        for proc in procs.values():
            stop_service(proc)
        raise
    return procs


def call_options(ports: dict[str, int], fork_password: str, logs: Path, redis_url: str) -> Any:
    """callsim's RunOptions for calls to the bridge of ``start_call_stack``."""
    from callsim.run import RunOptions

    return RunOptions(
        fork_url=f"ws://127.0.0.1:{ports['bridge']}/fork/{{uuid}}",
        fork_user="freeswitch",
        fork_password=fork_password,
        recordings=logs / "callsim",
        redis_url=redis_url,
    )
