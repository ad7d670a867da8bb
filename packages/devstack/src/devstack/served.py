"""The stack left running on the standard ports (`make serve`), found again by `make stop`.

Each service runs detached, logging to ``.run/logs/<service>.log``; ``.run/stack.json`` keeps the
pids of what was started here and the Redis URL; the two passwords the bridge and callsim share
are generated once into ``.run/stack.env`` (mode 600).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from devstack.catalog import ROOT, SERVICES, Ports, stack_env
from devstack.process import answers, launch, responds, stop, stop_pid

RUN = ROOT / ".run"
STATE = RUN / "stack.json"
SECRETS = RUN / "stack.env"
LOGS = RUN / "logs"
PORTS = Ports()

Report = Callable[[str], None]


def _say(line: str) -> None:
    print(line, flush=True)


#: The secrets of the served stack, made once: (name in .run/stack.env, length in bytes).
_SECRETS = (("ESL_PASSWORD", 16), ("FORK_PASSWORD", 16), ("DIALER_API_TOKEN", 24))


def passwords() -> dict[str, str]:
    """ESL_PASSWORD, FORK_PASSWORD and DIALER_API_TOKEN, the same on every serve (a file from
    before the dialer gains its token)."""
    RUN.mkdir(exist_ok=True)
    known = (
        dict(line.split("=", 1) for line in SECRETS.read_text().split()) if SECRETS.exists() else {}
    )
    missing = [(name, size) for name, size in _SECRETS if name not in known]
    if missing:
        known |= {name: secrets.token_urlsafe(size) for name, size in missing}
        fd = os.open(
            SECRETS, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600
        )  # never readable by others
        with os.fdopen(fd, "w") as out:
            out.write("".join(f"{name}={value}\n" for name, value in known.items()))
        SECRETS.chmod(0o600)
    return known


def environment(redis_url: str) -> dict[str, str]:
    """What every served service (and a `callsim run` against them) is given."""
    shared = passwords()
    return stack_env(
        PORTS,
        redis_url=redis_url,
        esl_password=shared["ESL_PASSWORD"],
        fork_password=shared["FORK_PASSWORD"],
        dialer_token=shared["DIALER_API_TOKEN"],
        dialer_database=f"sqlite+aiosqlite:///{RUN / 'dialer.db'}",
    ) | {"LOG_FORMAT": "json", "NOTIFY_SINK": os.environ.get("NOTIFY_SINK", "csv")}


def redis_url() -> str:
    """The Redis the served stack uses: REDIS_URL, the machine's, or the project's own."""
    from callkit.redis_provision import ensure

    return ensure(RUN, env_url=os.environ.get("REDIS_URL") or None)


def _up(name: str) -> bool:
    """Whether something answers on the service's port at all (ready or still loading)."""
    return responds(SERVICES[name].url(PORTS, "/health"))


def _read_state() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(STATE.read_text()) if STATE.exists() else {}
    return loaded


def serve(
    timeout_s: float = 180, report: Report = _say
) -> tuple[str, dict[str, subprocess.Popen[str]]]:
    """Start every service that is not up, wait until all are ready.

    Returns the Redis URL and the processes started by this call (the others were running).
    """
    url = redis_url()
    env = environment(url)
    state = _read_state()
    started: dict[str, subprocess.Popen[str]] = {}
    for name, service in SERVICES.items():
        if _up(name):
            report(f"  {name:<14} already running")
            continue
        log = LOGS / f"{name}.log"
        args = service.argv(PORTS)
        if name == "callsim" and os.environ.get("CALLEES"):
            # `make serve CALLEES=DIR`: the emulated switch answers campaign calls as the
            # outbound scripts in DIR say.
            args += ["--callees", str(Path(os.environ["CALLEES"]).resolve())]
        proc = launch(service.module, args=args, env=env, output=log, detached=True)
        state[name] = proc.pid
        started[name] = proc
        report(f"  {name:<14} started (pid {proc.pid}, log {log.relative_to(ROOT)})")
    state["redis_url"] = url
    STATE.write_text(json.dumps(state))
    # All were launched at once; the wait is for the slowest to load its model.
    deadline = time.monotonic() + timeout_s
    for name, service in SERVICES.items():
        while not answers(service.url(PORTS, service.ready_path)):
            proc_ = started.get(name)
            if (proc_ is not None and proc_.poll() is not None) or time.monotonic() > deadline:
                raise SystemExit(
                    f"error: {name} is not ready after {timeout_s:.0f}s; see .run/logs/{name}.log"
                )
            time.sleep(0.3)
        report(f"  {name:<14} ready")
    return url, started


def stop_served(
    names: Iterable[str] | None = None,
    procs: Mapping[str, subprocess.Popen[str]] | None = None,
    report: Report = _say,
) -> None:
    """Stop what ``serve`` started (all of it, or ``names``), the bridge first.

    ``procs``: processes this very process started, stopped through their handles.
    """
    if not STATE.exists():
        report("nothing was started by `serve`")
        return
    state = _read_state()
    wanted = set(SERVICES if names is None else names)
    for name in reversed(SERVICES):
        pid = state.get(name)
        if name not in wanted or not pid:
            continue
        del state[name]
        if procs and name in procs:
            stop(procs[name])
        elif not stop_pid(int(pid), SERVICES[name].module):
            continue
        report(f"  {name:<14} stopped")
    STATE.write_text(json.dumps(state))


def status(report: Report = _say) -> None:
    for name, service in SERVICES.items():
        ready = answers(service.url(PORTS, service.ready_path))
        report(f"  {name:<14} {'ready' if ready else 'up, not ready' if _up(name) else 'down'}")
