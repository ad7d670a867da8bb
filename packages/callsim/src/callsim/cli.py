"""`callsim`: run the emulated FreeSWITCH for a bridge or anyone testing against it."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from callkit.logging import configure_logging
from callsim.esl_server import EslServer
from callsim.switch import Callee, Switch


async def serve(host: str, port: int, password: str, callees: list[str]) -> None:
    switch = Switch()
    for spec in callees:
        number, _, behaviour = spec.partition("=")
        outcome, _, ring = behaviour.partition(":")
        switch.callees[number] = Callee(outcome or "answer", float(ring or 0))
    server = EslServer(switch, password, host, port)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"callsim: Event Socket on {host}:{server.port}", file=sys.stderr, flush=True)
    await stop.wait()
    await server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="callsim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve", help="run the emulated switch's inbound Event Socket")
    run.add_argument("--esl-host", default="127.0.0.1", help="interface to listen on")
    run.add_argument(
        "--esl-port", type=int, default=8021, help="Event Socket port (0 = any free port)"
    )
    run.add_argument(
        "--esl-password",
        default=os.environ.get("CALLSIM_ESL_PASSWORD"),
        help="Event Socket password (or CALLSIM_ESL_PASSWORD); required",
    )
    run.add_argument(
        "--callee",
        action="append",
        default=[],
        metavar="NUMBER=OUTCOME[:RING_S]",
        help="how a dialled number behaves: answer, busy, reject or no_answer (repeatable)",
    )
    args = parser.parse_args(argv)
    if not args.esl_password:
        print("callsim: --esl-password (or CALLSIM_ESL_PASSWORD) is required", file=sys.stderr)
        return 2
    configure_logging("INFO", "text", service="callsim")
    asyncio.run(serve(args.esl_host, args.esl_port, args.esl_password, args.callee))
    return 0


if __name__ == "__main__":
    sys.exit(main())
