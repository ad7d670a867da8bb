"""The stack the kill tests run (conftest.py builds one per module): callsim's FreeSWITCH
(its Event Socket in the test's process), the bridge, the ASR and TTS gateways, the policy
engine and the notifier writing a CSV file, all on a Redis of the stack's own with an
append-only file, so that Redis itself can be killed and restarted without touching the Redis
the rest of the suite shares."""

from __future__ import annotations

import asyncio
import csv
import json
import signal
import subprocess
import threading
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import redis as syncredis

import devstack
from callkit.contracts.outcome import parse_entry
from callkit.contracts.streams import CALLS_COMPLETED
from callkit.redis_provision import answers, find_redis_server, free_port
from callsim.esl_server import EslServer
from callsim.run import run_call, summary_lines
from callsim.script import CallScript
from callsim.switch import Switch

#: The call path and the notifier, in start order (the LLM is the session's embedded_llm).
SERVICES = ("asr_gateway", "tts_gateway", "policy_engine", "notifier", "fs_bridge")
FORK_PASSWORD = "fork-" + uuid.uuid4().hex[:8]
ESL_PASSWORD = "esl-" + uuid.uuid4().hex[:8]
T = TypeVar("T")


class AppendOnlyRedis:
    """redis-server as a child process, started as the deployment runs it (compose.yaml:
    appendonly yes, appendfsync everysec), so that a SIGKILL and a restart on the same port and
    folder come back with what the append-only file holds."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        argv = [find_redis_server(install=False), "--bind", "127.0.0.1", "--port", str(self.port)]
        argv += ["--dir", str(self.folder), "--save", "", "--appendonly", "yes"]
        argv += ["--appendfsync", "everysec", "--logfile", str(self.folder / "redis.log")]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        for _ in range(200):
            if answers(self.url):
                return
            assert self.proc.poll() is None, f"redis-server exited; see {self.folder}/redis.log"
            threading.Event().wait(0.05)
        raise AssertionError(f"redis-server did not answer; see {self.folder}/redis.log")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)


class EmulatedSwitch:
    """callsim's FreeSWITCH in this process: its calls and its Event Socket run on an event
    loop of their own thread, so the test's thread can kill and wait meanwhile."""

    def __init__(self, esl_port: int) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.switch = Switch(fork_build="jambonz")
        self.esl = EslServer(self.switch, ESL_PASSWORD, "127.0.0.1", esl_port)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 10) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def open(self) -> None:
        self._thread.start()
        self.run(self.esl.start())

    def drop(self) -> None:
        """The Event Socket gone as a crashed switch leaves it; ``run(esl.start())`` brings it
        back."""
        self.run(self.esl.crash())

    def close(self) -> None:
        self.run(self.esl.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@dataclass
class Stack:
    """The running stack: its services' processes by name (a restarted one replaces its entry),
    the emulated switch, its own Redis, and the folder of its logs and the notifier's CSV."""

    tmp: Path
    redis: AppendOnlyRedis
    fs: EmulatedSwitch
    ports: devstack.Ports
    env: dict[str, str]
    services: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)

    @property
    def csv_path(self) -> Path:
        return self.tmp / "calls.csv"

    def call(self, script: CallScript, progress: Callable[[str], None]) -> dict[str, Any]:
        """Play ``script`` to its end; ``progress`` gets callsim's progress lines (in the
        loop's thread: it must not block)."""
        options = devstack.caller_options(
            self.ports.bridge,
            fork_password=FORK_PASSWORD,
            redis_url=self.redis.url,
            recordings=self.tmp / "callsim",
        )
        report = self.fs.run(run_call(self.fs.switch, script, options, progress), 300)
        print("\n".join(summary_lines(report)))
        (self.tmp / f"{script.name}.json").write_text(json.dumps(report, indent=1))
        return report

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown, no draining, its connections cut as a crash cuts them."""
        proc = self.services[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def relaunch(self, name: str) -> None:
        """The service again on its port, as a supervisor restarts it; not waited for."""
        count = self.restarts[name] = self.restarts.get(name, 0) + 1
        self.services[name] = devstack.launch(
            name, env=self.env, output=self.tmp / f"{name}-restart{count}.log"
        )

    def wait_ready(self, name: str, timeout_s: float = 120) -> None:
        service = devstack.SERVICES[name]
        devstack.wait_ready(
            self.services[name],
            service.url(self.ports, service.ready_path),
            timeout_s=timeout_s,
            name=name,
        )

    def completed_entries(self, call_id: str) -> int:
        """How many calls:completed entries are the call's."""
        client = syncredis.Redis.from_url(self.redis.url)
        try:
            entries: Any = client.xrange(CALLS_COMPLETED)
        finally:
            client.close()
        return sum(parse_entry(fields).call_id == call_id for _, fields in entries)

    def rows(self, call_id: str) -> list[dict[str, str]]:
        """The notifier's CSV rows of the call."""
        if not self.csv_path.exists():
            return []
        with self.csv_path.open(newline="", encoding="utf-8") as f:
            return [row for row in csv.DictReader(f) if row.get("Call ID") == call_id]
