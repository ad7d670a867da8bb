"""One service as its own process: start it, wait until it is ready, stop it (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx

from devstack.catalog import ROOT, SERVICES, Ports

#: Where a process's output goes: a log file (appended), an open file, PIPE or DEVNULL.
Output = Path | IO[Any] | int
#: How long a service may take to drain its calls after SIGTERM before it is killed.
STOP_TIMEOUT_S = 15.0


class StartError(RuntimeError):
    """A service exited, or did not become ready in time; the message says where its log is."""


def launch(
    module: str,
    *,
    args: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    output: Output = subprocess.DEVNULL,
    detached: bool = False,
) -> subprocess.Popen[str]:
    """``python -m module args`` in the working tree, ``env`` over this process's; no waiting.

    With PIPE, stdout and stderr are separate pipes; otherwise stderr joins stdout. A detached
    process has its own session, so a Ctrl-C in the terminal that started it does not reach it.
    """
    command = [sys.executable, "-m", module, *args]
    options: dict[str, Any] = {
        "cwd": ROOT,
        "env": {**os.environ, **(env or {})},
        "text": True,
        "start_new_session": detached,
    }
    if isinstance(output, Path):
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("a", encoding="utf-8") as log:  # the child keeps its own descriptor
            return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, **options)
    if isinstance(output, int) and output == subprocess.PIPE:
        return subprocess.Popen(command, stdout=output, stderr=subprocess.PIPE, **options)
    return subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, **options)


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 now."""
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def responds(url: str) -> bool:
    """Whether anything answers HTTP at ``url`` now, whatever its status."""
    try:
        httpx.get(url, timeout=1)
    except httpx.TransportError:
        return False
    return True


def wait_ready(
    proc: subprocess.Popen[str], url: str, *, timeout_s: float, name: str, log: Path | None = None
) -> None:
    """Return once ``url`` answers 200; raise :class:`StartError` if ``proc`` exits first or time runs out."""
    where = f"; see {log}" if log is not None else ""
    deadline = time.monotonic() + timeout_s
    while not answers(url):
        if proc.poll() is not None:
            raise StartError(f"{name} exited with status {proc.returncode}{where}")
        if time.monotonic() > deadline:
            raise StartError(f"{name} did not answer {url} within {timeout_s:.0f} s{where}")
        time.sleep(0.1)


def start(
    module: str,
    env: Mapping[str, str],
    port: int,
    *,
    args: Iterable[str] = (),
    ready_path: str = "/ready",
    timeout_s: float = 30,
    output: Output = subprocess.DEVNULL,
) -> subprocess.Popen[str]:
    """Launch ``module`` and return once ``ready_path`` on ``port`` answers; stopped again on failure."""
    proc = launch(module, args=args, env=env, output=output)
    try:
        wait_ready(
            proc,
            f"http://127.0.0.1:{port}{ready_path}",
            timeout_s=timeout_s,
            name=module,
            log=output if isinstance(output, Path) else None,
        )
    except BaseException:
        stop(proc)
        raise
    return proc


def stop(proc: subprocess.Popen[str], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM (the service drains and shuts down), SIGKILL after ``timeout_s``; pipes closed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe:
            pipe.close()


@contextmanager
def running(
    module: str,
    env: Mapping[str, str],
    port: int,
    *,
    args: Iterable[str] = (),
    ready_path: str = "/ready",
    timeout_s: float = 30,
    output: Output = subprocess.PIPE,
) -> Iterator[subprocess.Popen[str]]:
    """:func:`start` as a context: the service runs inside the block and is stopped after it."""
    proc = start(
        module, env, port, args=args, ready_path=ready_path, timeout_s=timeout_s, output=output
    )
    try:
        yield proc
    finally:
        stop(proc)


def start_all(
    names: Iterable[str], ports: Ports, env: Mapping[str, str], logs: Path, *, timeout_s: float
) -> dict[str, subprocess.Popen[str]]:
    """Start services of the catalog one after the other, each logging to ``logs/<name>.log``.

    One at a time, so that on a small machine each loads its models without the others
    competing; if one fails, those already started are stopped.
    """
    procs: dict[str, subprocess.Popen[str]] = {}
    try:
        for name in names:
            service = SERVICES[name]
            procs[name] = start(
                service.module,
                env,
                service.port(ports),
                args=service.argv(ports),
                ready_path=service.ready_path,
                timeout_s=timeout_s,
                output=logs / f"{name}.log",
            )
    except BaseException:
        stop_all(procs)
        raise
    return procs


def stop_all(procs: Mapping[str, subprocess.Popen[str]]) -> None:
    """Stop in the reverse of start order: the bridge ends its calls before what it calls goes."""
    for proc in reversed(list(procs.values())):
        stop(proc)


def stop_pid(pid: int, module: str, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """Stop a process an earlier run started (known only by its pid); False if it was gone.

    A pid is reused once its process is gone, so only a process still running ``-m module`` is
    signalled.
    """
    if _gone(pid) or not _runs(pid, module):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_s
    while not _gone(pid):
        if time.monotonic() > deadline:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + timeout_s
        time.sleep(0.1)
    return True


def _runs(pid: int, module: str) -> bool:
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.parent.exists():  # no procfs (macOS): trust the pid
        return True
    try:
        argv = cmdline.read_bytes().split(b"\0")
    except OSError:
        return False
    return b"-m" in argv and module.encode() in argv


def _gone(pid: int) -> bool:
    # A child of this process stays a zombie, signal 0 still reaching it, until it is reaped.
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
