"""The local stack's services: how each one starts, on which port, and the environment that wires them."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from callkit.redis_provision import ensure, free_port

if TYPE_CHECKING:
    from callsim.run import RunOptions

#: The working tree whose services run (cwd of every process: prompts/, data/, recordings/).
ROOT = Path(__file__).resolve().parents[4]
#: The Basic-auth user callsim's fork sends and the bridge expects.
FORK_USER = "freeswitch"


@dataclass(frozen=True)
class Ports:
    """Every port of the stack; the defaults are the services' own (`make run-*`, `make serve`)."""

    llm: int = 8000
    asr: int = 8081
    tts: int = 8082
    policy: int = 8083
    notifier: int = 8085
    bridge: int = 8080
    esl: int = 8021
    control: int = 8022
    dialer: int = 8086

    @classmethod
    def free(cls) -> Ports:
        """Ports nothing listens on now, so several stacks (tests, benchmarks) run side by side."""
        return cls(*(free_port() for _ in fields(cls)))


@dataclass(frozen=True)
class Service:
    module: str
    #: The field of :class:`Ports` its HTTP endpoints listen on.
    port_field: str
    ready_path: str = "/ready"
    #: Arguments after ``python -m module``; ``{llm}``, ``{bridge}``, … are the stack's ports.
    args: tuple[str, ...] = ()

    def port(self, ports: Ports) -> int:
        value: int = getattr(ports, self.port_field)
        return value

    def argv(self, ports: Ports) -> list[str]:
        named = {f.name: getattr(ports, f.name) for f in fields(ports)}
        return [arg.format(**named) for arg in self.args]

    def url(self, ports: Ports, path: str) -> str:
        return f"http://127.0.0.1:{self.port(ports)}{path}"


#: Start order: each service finds what it calls already listening.
SERVICES: dict[str, Service] = {
    s.module: s
    for s in (
        Service("llm", "llm"),
        Service("asr_gateway", "asr"),
        Service("tts_gateway", "tts"),
        Service("policy_engine", "policy"),
        Service("notifier", "notifier"),
        # The emulated FreeSWITCH: its Event Socket for the bridge, its control port for
        # `callsim run --emulator`; its calls fork to the bridge.
        Service(
            "callsim",
            "control",
            ready_path="/health",
            args=(
                "serve",
                "--fork-build",
                "jambonz",
                "--esl-port",
                "{esl}",
                "--control-port",
                "{control}",
                "--fork-url",
                "ws://127.0.0.1:{bridge}/fork/{{uuid}}",
            ),
        ),
        Service("fs_bridge", "bridge"),
        # Places campaign calls through callsim's Event Socket; answered ones fork to the bridge.
        Service("dialer", "dialer"),
    )
}
#: What a call needs when the caller side (callsim) runs in the test or benchmark itself.
CALL_PATH = ("llm", "asr_gateway", "tts_gateway", "policy_engine", "fs_bridge")


def fork_url(bridge_port: int) -> str:
    """The bridge's mod_audio_fork endpoint, ``{uuid}`` left for the call's uuid."""
    return f"ws://127.0.0.1:{bridge_port}/fork/{{uuid}}"


def caller_options(
    bridge_port: int,
    *,
    fork_password: str,
    redis_url: str,
    recordings: Path,
    asr_port: int | None = None,
) -> RunOptions:
    """callsim's options for calls this process places (its own switch) on the stack's bridge;
    with the ASR gateway's port, reports compare the call's finals with offline transcription."""
    from callsim.run import RunOptions  # the caller side's voices load only when calls are placed

    return RunOptions(
        fork_url=fork_url(bridge_port),
        fork_user=FORK_USER,
        fork_password=fork_password,
        recordings=recordings,
        redis_url=redis_url,
        asr_url=f"http://127.0.0.1:{asr_port}" if asr_port is not None else None,
    )


def stack_env(
    ports: Ports,
    *,
    redis_url: str,
    esl_password: str,
    fork_password: str,
    recordings: Path | None = None,
    dialer_token: str | None = None,
    dialer_database: str | None = None,
) -> dict[str, str]:
    """The variables that put every service on ``ports`` and point each at the ones it calls.

    ``dialer_token``: the campaign API's token (a fresh one when None); ``dialer_database``:
    its database URL (the dialer's default SQLite file when None)."""
    env = {
        "REDIS_URL": redis_url,
        "LLM_PORT": str(ports.llm),
        "ASR_PORT": str(ports.asr),
        "TTS_PORT": str(ports.tts),
        "POLICY_PORT": str(ports.policy),
        "POLICY_LLM_BASE_URL": f"http://127.0.0.1:{ports.llm}/v1",
        "NOTIFY_PORT": str(ports.notifier),
        "BRIDGE_PORT": str(ports.bridge),
        "BRIDGE_ESL_PORT": str(ports.esl),
        "BRIDGE_ESL_PASSWORD": esl_password,
        "BRIDGE_FORK_USER": FORK_USER,
        "BRIDGE_FORK_PASSWORD": fork_password,
        "BRIDGE_ASR_URL": f"ws://127.0.0.1:{ports.asr}/ws/transcribe",
        "BRIDGE_TTS_URL": f"http://127.0.0.1:{ports.tts}",
        "BRIDGE_POLICY_URL": f"http://127.0.0.1:{ports.policy}",
        "CALLSIM_ESL_PASSWORD": esl_password,
        "CALLSIM_FORK_AUTH": f"{FORK_USER}:{fork_password}",
        # callsim's report compares the call's finals with the same model run offline on the
        # caller's channel (in-call versus offline word errors).
        "CALLSIM_ASR_URL": f"http://127.0.0.1:{ports.asr}",
        "DIALER_PORT": str(ports.dialer),
        "DIALER_ESL_PORT": str(ports.esl),
        "DIALER_ESL_PASSWORD": esl_password,
        "DIALER_API_TOKEN": dialer_token or secrets.token_urlsafe(24),
    }
    if dialer_database is not None:
        env["DIALER_DATABASE_URL"] = dialer_database
    if recordings is not None:
        env["BRIDGE_RECORDINGS_DIR"] = str(recordings)
    return env


@dataclass(frozen=True)
class BenchStack:
    """A whole stack's wiring on free ports with fresh secrets, for a process that places calls."""

    redis_url: str
    folder: Path
    ports: Ports
    esl_password: str
    fork_password: str
    env: dict[str, str]


def bench_stack(name: str, extra_env: dict[str, str] | None = None) -> BenchStack:
    """The stack of one benchmark run: Redis (started if none answers), ``.run/<name>/`` for its
    logs and recordings, free ports, new passwords, and a calendar namespace of its own so its
    bookings never meet another run's."""
    redis_url = ensure(ROOT / ".run", env_url=os.environ.get("REDIS_URL") or None)
    folder = ROOT / ".run" / name
    folder.mkdir(parents=True, exist_ok=True)
    ports = Ports.free()
    esl_password, fork_password = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    env = stack_env(
        ports,
        redis_url=redis_url,
        esl_password=esl_password,
        fork_password=fork_password,
        recordings=folder / "recordings",
    ) | {"POLICY_CALENDAR_NAMESPACE": f"{name}-{os.getpid()}-{time.time_ns()}"}
    return BenchStack(
        redis_url, folder, ports, esl_password, fork_password, env | (extra_env or {})
    )
