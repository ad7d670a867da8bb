"""``deploycheck``: run every static check of the deployment and say what is wrong."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from deploycheck.compose import check_compose
from deploycheck.dockerfiles import check_dockerfiles
from deploycheck.freeswitch import check_freeswitch

CHECKS: dict[str, Callable[[Path], list[str]]] = {
    "compose": check_compose,
    "freeswitch": check_freeswitch,
    "dockerfiles": check_dockerfiles,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="deploycheck",
        description="Check compose.yaml (Compose specification schema, the services' settings, "
        "secrets, healthchecks, published ports), freeswitch/ (the configuration as FreeSWITCH "
        "preprocesses it, the event socket, the SIP profile, the dialplan's uuid_audio_fork "
        "arguments) and the Dockerfiles (hadolint, pinned bases, non-root users). Exit status 1 "
        "when anything is wrong.",
    )
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root")
    parser.add_argument("checks", nargs="*", help=f"any of {', '.join(CHECKS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = [c for c in args.checks if c not in CHECKS]
    if unknown:
        parser.error(f"unknown check(s): {', '.join(unknown)}; choose from {', '.join(CHECKS)}")
    failed = 0
    for name in args.checks or list(CHECKS):
        started = time.monotonic()
        problems = CHECKS[name](args.root.resolve())
        took = time.monotonic() - started
        status = "ok" if not problems else f"{len(problems)} problem(s)"
        print(f"{name:12} {status} ({took:.1f} s)")
        for problem in problems:
            print(f"  - {problem}")
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
