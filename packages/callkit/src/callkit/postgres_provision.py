"""Make sure a PostgreSQL answers: use a running one, or start the project's own cluster.

Used by ``make setup`` and by the test suite, like :mod:`callkit.redis_provision`. Order:

1. ``DATABASE_TEST_URL`` if set (it must answer; nothing else is tried, so a typo is not hidden);
2. a server on 127.0.0.1:5432 that lets user ``postgres`` in without a password (trust auth);
3. the project's own cluster from an earlier run (its URL is kept in ``.run/postgres.url``),
   started again when it was stopped (after a reboot, say);
4. a new cluster: ``initdb`` into ``.run/postgres/data`` and ``pg_ctl start`` on a free loopback
   port. Debian's binaries (``/usr/lib/postgresql/*/bin``) are preferred, then ``PATH``; when
   there are none and we run as root on Debian, ``apt-get install postgresql`` first. PostgreSQL
   refuses to run as root, so as root the cluster belongs to the ``postgres`` user.

The printed URL is the server's maintenance database in libpq form
(``postgresql://postgres@127.0.0.1:5432/postgres``); :func:`sqlalchemy_url` turns it into the
``postgresql+asyncpg://`` form the services take. Talking to the server needs no client
library: the few exchanges here (start-up, authentication, a simple query) are spoken directly
on the wire protocol (version 3), over TCP or a unix socket, without TLS.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import hmac
import os
import pwd
import re
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from callkit.errors import DependencyUnavailable
from callkit.redis_client import redact_url
from callkit.redis_provision import free_port

DEFAULT_URL: Final = "postgresql://postgres@127.0.0.1:5432/postgres"
#: The superuser of the project's own cluster, whichever OS user runs it.
SUPERUSER: Final = "postgres"
#: The OS user that owns the cluster when we run as root (Debian's package creates it).
OS_USER: Final = "postgres"
INSTALL_HINT: Final = (
    "no PostgreSQL is reachable and its server binaries (initdb, pg_ctl) are not installed.\n"
    "Install them, then run the command again:\n"
    "  Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y postgresql\n"
    "  macOS:         brew install postgresql\n"
    "or point DATABASE_TEST_URL at a PostgreSQL you already run."
)
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


# ---------------------------------------------------------------- the wire protocol


class ServerError(Exception):
    """The server answered with an ErrorResponse; ``code`` is its SQLSTATE."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Target:
    """Where and as whom to connect, read from a libpq-style URL."""

    host: str
    port: int
    user: str
    password: str | None
    database: str

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        if not parts.scheme.startswith("postgres"):
            raise ValueError(f"not a PostgreSQL URL: {redact_url(url)}")
        query = parse_qs(parts.query)
        host = query["host"][0] if "host" in query else parts.hostname or "127.0.0.1"
        port = int(query["port"][0]) if "port" in query else parts.port or 5432
        user = unquote(parts.username) if parts.username else SUPERUSER
        password = unquote(parts.password) if parts.password is not None else None
        database = unquote(parts.path.lstrip("/")) or user
        return cls(host, port, user, password, database)


class _Session:
    """One connection, authenticated; enough of the protocol for provisioning and tests."""

    def __init__(self, target: Target, timeout_s: float) -> None:
        self._target = target
        if target.host.startswith("/"):
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._sock.settimeout(timeout_s)
            self._sock.connect(f"{target.host}/.s.PGSQL.{target.port}")
        else:
            self._sock = socket.create_connection((target.host, target.port), timeout_s)
        self._buffer = b""
        try:
            self._start()
        except BaseException:
            self._sock.close()
            raise

    def close(self) -> None:
        try:
            self._sock.sendall(b"X" + struct.pack("!i", 4))
        except OSError:
            pass
        self._sock.close()

    def query(self, sql: str) -> list[list[str | None]]:
        """Run ``sql`` (the simple query protocol) and return its rows as text."""
        self._send(b"Q", sql.encode() + b"\0")
        rows: list[list[str | None]] = []
        error: ServerError | None = None
        while True:
            kind, body = self._receive()
            if kind == b"D":
                rows.append(_data_row(body))
            elif kind == b"E":
                error = _error(body)
            elif kind == b"Z":
                if error is not None:
                    raise error
                return rows

    def _start(self) -> None:
        params = {"user": self._target.user, "database": self._target.database}
        payload = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items())
        payload = struct.pack("!i", 196608) + payload + b"\0"  # protocol 3.0
        self._sock.sendall(struct.pack("!i", len(payload) + 4) + payload)
        while True:
            kind, body = self._receive()
            if kind == b"E":
                raise _error(body)
            if kind == b"R":
                self._authenticate(body)
            elif kind == b"Z":
                return

    def _authenticate(self, body: bytes) -> None:
        (method,) = struct.unpack("!i", body[:4])
        if method == 0:  # AuthenticationOk
            return
        password = self._target.password
        if password is None:
            raise ServerError("the server asks for a password and the URL has none", "28P01")
        if method == 3:  # cleartext
            self._send(b"p", password.encode() + b"\0")
        elif method == 5:  # md5, salted
            inner = hashlib.md5((password + self._target.user).encode()).hexdigest()
            outer = hashlib.md5(inner.encode() + body[4:8]).hexdigest()
            self._send(b"p", b"md5" + outer.encode() + b"\0")
        elif method == 10:  # SASL: only SCRAM-SHA-256 without channel binding
            mechanisms = body[4:].split(b"\0")
            if b"SCRAM-SHA-256" not in mechanisms:
                raise ServerError(f"unsupported SASL mechanisms {mechanisms!r}", "28000")
            self._scram(password)
        else:
            raise ServerError(f"unsupported authentication method {method}", "28000")

    def _scram(self, password: str) -> None:
        """SCRAM-SHA-256 (RFC 7677) as PostgreSQL speaks it: the user name in it is ignored."""
        client_nonce = base64.b64encode(secrets.token_bytes(18)).decode()
        first_bare = f"n=,r={client_nonce}"
        first = f"n,,{first_bare}".encode()
        self._send(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first)
        kind, body = self._receive()
        if kind == b"E":
            raise _error(body)
        server_first = body[4:].decode()
        fields = dict(item.split("=", 1) for item in server_first.split(","))
        if not fields["r"].startswith(client_nonce):
            raise ServerError("the server's SCRAM nonce does not extend ours", "28000")
        salted = hashlib.pbkdf2_hmac(
            "sha256", password.encode(), base64.b64decode(fields["s"]), int(fields["i"])
        )
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        final_bare = f"c=biws,r={fields['r']}"
        auth_message = f"{first_bare},{server_first},{final_bare}".encode()
        signature = hmac.digest(hashlib.sha256(client_key).digest(), auth_message, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        self._send(b"p", f"{final_bare},p={base64.b64encode(proof).decode()}".encode())
        kind, body = self._receive()
        if kind == b"E":
            raise _error(body)
        server_key = hmac.digest(salted, b"Server Key", "sha256")
        expected = base64.b64encode(hmac.digest(server_key, auth_message, "sha256")).decode()
        if body[4:].decode() != f"v={expected}":
            raise ServerError("the server's SCRAM signature is wrong", "28000")

    def _send(self, kind: bytes, payload: bytes) -> None:
        self._sock.sendall(kind + struct.pack("!i", len(payload) + 4) + payload)

    def _receive(self) -> tuple[bytes, bytes]:
        header = self._read(5)
        (length,) = struct.unpack("!i", header[1:])
        return header[:1], self._read(length - 4)

    def _read(self, n: int) -> bytes:
        while len(self._buffer) < n:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data


def _data_row(body: bytes) -> list[str | None]:
    (count,) = struct.unpack("!h", body[:2])
    values: list[str | None] = []
    at = 2
    for _ in range(count):
        (size,) = struct.unpack("!i", body[at : at + 4])
        at += 4
        if size < 0:
            values.append(None)
        else:
            values.append(body[at : at + size].decode())
            at += size
    return values


def _error(body: bytes) -> ServerError:
    fields = {item[:1]: item[1:].decode(errors="replace") for item in body.split(b"\0") if item}
    return ServerError(fields.get(b"M", "unknown error"), fields.get(b"C", "XX000"))


@contextlib.contextmanager
def _session(url: str, timeout_s: float = 5.0) -> Iterator[_Session]:
    session = _Session(Target.parse(url), timeout_s)
    try:
        yield session
    finally:
        session.close()


def problem(url: str, timeout_s: float = 1.0) -> str | None:
    """Why a PostgreSQL at ``url`` cannot be used (refused, auth failed…), or None when it can."""
    try:
        with _session(url, timeout_s) as session:
            session.query("SELECT 1")
    except ServerError as exc:
        return f"the server answered: {exc}"
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def answers(url: str, timeout_s: float = 1.0) -> bool:
    """Whether a PostgreSQL at ``url`` lets us in and runs a query."""
    return problem(url, timeout_s) is None


def execute(url: str, sql: str) -> list[list[str | None]]:
    """Run one statement (or several, separated by ``;``) on ``url``; rows come back as text.

    Statements that cannot run in a transaction block (``CREATE DATABASE``) must be sent alone.
    """
    try:
        with _session(url) as session:
            return session.query(sql)
    except OSError as exc:
        raise DependencyUnavailable(
            f"PostgreSQL at {redact_url(url)} did not answer: {exc}"
        ) from exc


def with_database(url: str, database: str) -> str:
    """``url`` naming another database on the same server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def sqlalchemy_url(url: str, *, database: str | None = None) -> str:
    """The ``postgresql+asyncpg://`` URL SQLAlchemy's async engine takes, for ``url``."""
    parts = urlsplit(with_database(url, database) if database else url)
    return urlunsplit(("postgresql+asyncpg", parts.netloc, parts.path, parts.query, ""))


def create_database(url: str, name: str) -> str:
    """Create database ``name`` on the server at ``url``; returns the URL naming it."""
    _check_name(name)
    execute(url, f'CREATE DATABASE "{name}"')
    return with_database(url, name)


def drop_database(url: str, name: str) -> None:
    """Drop database ``name`` if it exists, closing the connections still open to it."""
    _check_name(name)
    execute(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ValueError(f"{name!r} is not a plain database name (a-z, 0-9, _)")


# ---------------------------------------------------------------- the project's own cluster


@dataclass(frozen=True)
class Binaries:
    initdb: str
    pg_ctl: str


def find_binaries(install: bool = True) -> Binaries:
    """Debian's newest server binaries, else those on PATH; installs Debian's package as root."""
    found = _binaries()
    if found:
        return found
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        print("PostgreSQL not found; installing Debian's postgresql package…", file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-q"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], check=False, env=env)
        found = _binaries()
        if found:
            return found
    raise DependencyUnavailable(INSTALL_HINT)


def _binaries() -> Binaries | None:
    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", path.parent.parent.name))

    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=version, reverse=True)
    for initdb in debian:
        pg_ctl = initdb.with_name("pg_ctl")
        if os.access(initdb, os.X_OK) and os.access(pg_ctl, os.X_OK):
            return Binaries(str(initdb), str(pg_ctl))
    initdb_path, pg_ctl_path = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb_path and pg_ctl_path:
        return Binaries(initdb_path, pg_ctl_path)
    return None


def _os_user() -> str | None:
    """Whom the server runs as: None for ourselves, or (as root) the ``postgres`` user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", OS_USER],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return OS_USER


def _as(user: str | None, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=cwd,
        user=user,
        group=pwd.getpwnam(user).pw_gid if user else None,
        extra_groups=[] if user else None,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def cluster_dir(run_dir: Path) -> Path:
    """Where the project's own cluster lives: ``run_dir/postgres``, or, when the cluster's user
    cannot reach that folder (a checkout under a private home), a folder of its own in /tmp."""
    preferred = run_dir.resolve() / "postgres"
    preferred.mkdir(parents=True, exist_ok=True)
    user = _os_user()
    if user is None:
        return preferred
    uid, gid = pwd.getpwnam(user)[2:4]
    os.chown(preferred, uid, gid)
    if _as(user, ["test", "-w", str(preferred)], cwd=Path("/")).returncode == 0:
        return preferred
    key = hashlib.sha256(str(preferred).encode()).hexdigest()[:12]
    fallback = Path(tempfile.gettempdir()) / f"clinic-voice-postgres-{key}"
    fallback.mkdir(mode=0o700, exist_ok=True)
    os.chown(fallback, uid, gid)
    return fallback


def start_cluster(
    run_dir: Path, *, port: int | None = None, binaries: Binaries | None = None
) -> str:
    """Start (creating it first if needed) the project's own cluster; its URL once it answers.

    The cluster is a throwaway for development and tests: it listens on loopback only, lets
    ``postgres`` in without a password, and does not fsync.
    """
    binaries = binaries or find_binaries()
    user = _os_user()
    home = cluster_dir(run_dir)
    data = home / "data"
    log = home / "postgres.log"
    if not (data / "PG_VERSION").exists():
        created = _as(
            user,
            [
                binaries.initdb,
                "--pgdata",
                str(data),
                "--username",
                SUPERUSER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--no-locale",
                "--no-sync",
                "--no-instructions",
            ],
            cwd=home,
        )
        if created.returncode != 0:
            raise DependencyUnavailable(f"initdb failed in {data}: {created.stderr.strip()[-800:]}")
        # A socket path is limited to 107 bytes; past that the cluster listens on TCP only.
        sockets = str(home) if len(str(home)) < 90 else ""
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# The project's own development and test cluster (callkit.postgres_provision).\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{sockets}'\n"
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
            )
    port = port or free_port()
    options = f"-p {port}"
    start = [binaries.pg_ctl, "--pgdata", str(data), "--log", str(log), "--options", options]
    started = _as(user, [*start, "--wait", "--timeout", "60", "start"], cwd=home)
    url = f"postgresql://{SUPERUSER}@127.0.0.1:{port}/postgres"
    if started.returncode != 0 or not answers(url, timeout_s=5):
        tail = log.read_text(errors="replace")[-800:] if log.exists() else started.stderr
        raise DependencyUnavailable(
            f"started PostgreSQL on port {port} but it did not answer: {tail}"
        )
    return url


def stop_cluster(run_dir: Path) -> bool:
    """Stop the project's own cluster (fast shutdown); False when it was not running."""
    found = _binaries()
    data = cluster_dir(run_dir) / "data"
    if found is None or not (data / "postmaster.pid").exists():
        return False
    stopped = _as(
        _os_user(), [found.pg_ctl, "--pgdata", str(data), "--mode", "fast", "--wait", "stop"], data
    )
    return stopped.returncode == 0


def ensure(run_dir: Path, *, env_url: str | None = None, default_url: str = DEFAULT_URL) -> str:
    """The URL of a PostgreSQL that answers, starting one if needed (see the module docstring)."""
    if env_url:
        why = problem(env_url)
        if why is None:
            return env_url
        raise DependencyUnavailable(
            f"DATABASE_TEST_URL is set but no usable PostgreSQL is there ({redact_url(env_url)}): {why}"
        )
    if answers(default_url):
        return default_url
    run_dir.mkdir(parents=True, exist_ok=True)
    state = run_dir / "postgres.url"
    # Two test runs in one checkout may get here at once: one of them creates the cluster.
    with (run_dir / "postgres.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        previous = state.read_text().strip() if state.exists() else None
        if previous and answers(previous):
            return previous
        port = Target.parse(previous).port if previous else None
        if port is not None and not _port_free(port):
            port = None
        url = start_cluster(run_dir, port=port)
        state.write_text(url + "\n")
        return url


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m callkit.postgres_provision",
        description="Print the URL of a reachable PostgreSQL, starting the project's own cluster if none answers.",
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=Path(".run"),
        help="where the project's own cluster keeps its state",
    )
    parser.add_argument(
        "--redacted", action="store_true", help="print the URL with its password masked"
    )
    args = parser.parse_args(argv)
    try:
        url = ensure(args.run_dir, env_url=os.environ.get("DATABASE_TEST_URL") or None)
    except DependencyUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(redact_url(url) if args.redacted else url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
