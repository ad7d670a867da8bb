"""Make sure a Redis answers: use a running one, or start the project's own redis-server.

Used by ``make setup`` and by the test suite. Order:

1. ``REDIS_URL`` if set (it must answer; nothing else is tried, so a typo is not hidden);
2. a Redis already on 127.0.0.1:6379;
3. the project's own server from an earlier run (its URL is kept in ``.run/redis.url``);
4. a new ``redis-server`` on a free port, with data under ``.run/redis/``. When the binary is
   missing and we run as root on Debian, ``apt-get install redis-server`` first; otherwise
   fail with a message saying exactly what to install.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from callkit.errors import DependencyUnavailable

DEFAULT_URL = "redis://127.0.0.1:6379/0"
INSTALL_HINT = (
    "no Redis is reachable and redis-server is not installed.\n"
    "Install it, then run the command again:\n"
    "  Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y redis-server\n"
    "  macOS:         brew install redis\n"
    "or point REDIS_URL at a Redis you already run."
)


def answers(url: str, timeout_s: float = 0.5) -> bool:
    """Whether a Redis at ``url`` answers PING (a raw RESP exchange; no client library needed)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        if parts.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout_s)
            sock.connect(parts.path)
        else:
            sock = socket.create_connection(
                (parts.hostname or "127.0.0.1", parts.port or 6379), timeout_s
            )
    except OSError:
        return False
    try:
        if parts.password:
            user = parts.username or "default"
            cmd = f"*3\r\n$4\r\nAUTH\r\n${len(user)}\r\n{user}\r\n${len(parts.password)}\r\n{parts.password}\r\n"
            sock.sendall(cmd.encode())
            sock.recv(64)
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False
    finally:
        sock.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def find_redis_server(install: bool = True) -> str:
    """Path of redis-server, installing Debian's package as root when it is missing."""
    found = shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.access(p, os.X_OK)),
        None,
    )
    if found:
        return found
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        print("redis-server not found; installing Debian's redis-server package…", file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-q"], check=False, env=env)
        done = subprocess.run(
            ["apt-get", "install", "-y", "-q", "redis-server"], check=False, env=env
        )
        found = shutil.which("redis-server")
        if done.returncode == 0 and found:
            return found
    raise DependencyUnavailable(INSTALL_HINT)


def start_server(run_dir: Path, *, binary: str | None = None, port: int | None = None) -> str:
    """Start a daemonized redis-server bound to loopback; returns its URL once it answers."""
    binary = binary or find_redis_server()
    port = port or free_port()
    data = run_dir / "redis"
    data.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            binary,
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(data),
            "--pidfile",
            str(data / "redis.pid"),
            "--logfile",
            str(data / "redis.log"),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if answers(url):
            return url
        time.sleep(0.05)
    raise DependencyUnavailable(
        f"started redis-server on port {port} but it did not answer; see {data / 'redis.log'}"
    )


def ensure(run_dir: Path, *, env_url: str | None = None, default_url: str = DEFAULT_URL) -> str:
    """The URL of a Redis that answers, starting one if needed (see the module docstring)."""
    if env_url:
        if answers(env_url):
            return env_url
        raise DependencyUnavailable(
            f"REDIS_URL is set but nothing answers there ({_safe(env_url)})"
        )
    if answers(default_url):
        return default_url
    state = run_dir / "redis.url"
    if state.exists():
        url = state.read_text().strip()
        if answers(url):
            return url
    url = start_server(run_dir)
    state.write_text(url + "\n")
    return url


def _safe(url: str) -> str:
    from callkit.redis_client import redact_url

    return redact_url(url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m callkit.redis_provision",
        description="Print the URL of a reachable Redis, starting the project's own redis-server if none answers.",
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=Path(".run"),
        help="where the project's own server keeps its state",
    )
    parser.add_argument(
        "--redacted", action="store_true", help="print the URL with its password masked"
    )
    args = parser.parse_args(argv)
    try:
        url = ensure(args.run_dir, env_url=os.environ.get("REDIS_URL") or None)
    except DependencyUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(_safe(url) if args.redacted else url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
