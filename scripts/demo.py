"""Start the whole stack on this machine, show each service's readiness, then stop it.

Each service runs as its own process (`python -m <service>`) on a free port, exactly as
`make run-*` would start it, with the embedded defaults: packaged models, the local Redis,
the embedded llama.cpp LLM. The demo waits for every /ready, asks the LLM one question
through the OpenAI API, prints a table and shuts everything down.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SERVICES = [
    ("llm", "LLM_PORT"),
    ("asr_gateway", "ASR_PORT"),
    ("tts_gateway", "TTS_PORT"),
    ("policy_engine", "POLICY_PORT"),
    ("notifier", "NOTIFY_PORT"),
    ("fs_bridge", "BRIDGE_PORT"),
]


@dataclass
class Running:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    started: float
    ready_after_s: float | None = None
    checks: dict[str, str] = field(default_factory=dict)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--timeout", type=float, default=60, help="seconds to wait for every service to be ready"
    )
    args = parser.parse_args()

    from callkit.redis_provision import ensure, free_port

    redis_url = ensure(ROOT / ".run", env_url=os.environ.get("REDIS_URL") or None)
    log_dir = ROOT / ".run" / "demo"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "LOG_FORMAT": "json",
        "BRIDGE_ESL_PASSWORD": os.environ.get("BRIDGE_ESL_PASSWORD") or secrets.token_urlsafe(16),
    }
    running: list[Running] = []
    try:
        for name, port_var in SERVICES:
            port = free_port()
            log = (log_dir / f"{name}.log").open("wb")
            proc = subprocess.Popen(
                [sys.executable, "-m", name],
                env={**env, port_var: str(port)},
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
            running.append(Running(name, port, proc, time.monotonic()))
            print(f"started {name:<14} pid {proc.pid:<7} port {port}", flush=True)
        deadline = time.monotonic() + args.timeout
        pending = list(running)
        while pending and time.monotonic() < deadline:
            for svc in list(pending):
                if svc.proc.poll() is not None:
                    print(
                        f"error: {svc.name} exited with {svc.proc.returncode}; see {log_dir / svc.name}.log"
                    )
                    return 1
                try:
                    r = httpx.get(f"http://127.0.0.1:{svc.port}/ready", timeout=2)
                except httpx.TransportError:
                    continue
                svc.checks = r.json().get("checks", {})
                if r.status_code == 200:
                    svc.ready_after_s = time.monotonic() - svc.started
                    pending.remove(svc)
                    print(f"ready   {svc.name:<14} after {svc.ready_after_s:.1f}s", flush=True)
            time.sleep(0.2)

        llm = running[0]
        answer = "(llm not ready)"
        if llm.ready_after_s is not None:
            start = time.monotonic()
            r = httpx.post(
                f"http://127.0.0.1:{llm.port}/v1/chat/completions",
                json={
                    "model": "clinic-agent",
                    "max_tokens": 40,
                    "temperature": 0,
                    "messages": [
                        {
                            "role": "system",
                            "content": "You are a clinic receptionist. Answer in one sentence.",
                        },
                        {"role": "user", "content": "Can I book an MRI of my knee for tomorrow?"},
                    ],
                },
                timeout=60,
            )
            answer = f"{r.json()['choices'][0]['message']['content'].strip()}  ({time.monotonic() - start:.1f}s)"

        print("\nservice         port   ready   checks")
        for svc in running:
            ready = f"{svc.ready_after_s:.1f}s" if svc.ready_after_s is not None else "NO"
            checks = ", ".join(f"{k}={v}" for k, v in svc.checks.items()) or "-"
            print(f"{svc.name:<15} {svc.port:<6} {ready:<7} {checks}")
        print(f"\nLLM answer: {answer}")
        print(f"logs: {log_dir}")
        return 0 if all(s.ready_after_s is not None for s in running) else 1
    finally:
        for svc in running:
            if svc.proc.poll() is None:
                svc.proc.send_signal(signal.SIGTERM)
        for svc in running:
            try:
                svc.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                svc.proc.kill()


if __name__ == "__main__":
    sys.exit(main())
