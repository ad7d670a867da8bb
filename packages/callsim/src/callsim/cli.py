"""`callsim`: the emulated FreeSWITCH, and scripted calls that measure the agent from the
caller's side.

  callsim serve --esl-port 8021 --esl-password PW [--control-port 8022] [--callees DIR]
      the emulated switch alone: Event Socket for the bridge and the dialer, a control port for
      `callsim run`, and the people a campaign calls (outbound scripts, a report per call)
  callsim run --script calls/ --report out.json [--emulator http://127.0.0.1:8022]
      play call scripts (a file, or a folder as a suite) and report v2v, barge-in and checks
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from callkit.errors import AgentError
from callkit.logging import configure_logging
from callsim.callees import CalleeBook, check_scripts
from callsim.control import create_control_app
from callsim.esl_server import EslServer
from callsim.fsconf import ConfError
from callsim.run import (
    RunOptions,
    interjection_line,
    interjection_summary,
    load_deployment,
    percentile,
    run_call,
    summary_lines,
)
from callsim.script import CallScript, load_scripts
from callsim.switch import Callee, Switch

DEFAULT_FORK_URL = "ws://127.0.0.1:8080/fork/{uuid}"


class Progress:
    """One line that rewrites itself on a terminal; a line every few seconds otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self._last = 0.0

    def __call__(self, text: str) -> None:
        if self.tty:
            print(f"\r\033[K{text}", end="", file=sys.stderr, flush=True)
        elif time.monotonic() - self._last >= 5:
            self._last = time.monotonic()
            print(text, file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.tty:
            print("\r\033[K", end="", file=sys.stderr, flush=True)


def _options(args: argparse.Namespace) -> RunOptions:
    user = password = None
    auth = args.fork_auth or os.environ.get("CALLSIM_FORK_AUTH")
    if auth:
        user, _, password = auth.partition(":")
    return RunOptions(
        fork_url=args.fork_url,
        fork_user=user,
        fork_password=password,
        recordings=Path(args.recordings),
        redis_url=args.redis_url,
        asr_url=args.asr_url,
    )


def _static_callees(specs: list[str]) -> dict[str, Callee]:
    """``--callee NUMBER=OUTCOME[:RING_S]`` as the switch's far ends."""
    callees = {}
    for spec in specs:
        number, _, behaviour = spec.partition("=")
        outcome, _, ring = behaviour.partition(":")
        try:
            callees[number] = Callee(outcome or "answer", float(ring or 0))
        except ValueError as exc:
            raise AgentError(f"--callee {spec!r}: {exc}") from None
    return callees


async def _serve(args: argparse.Namespace, callees: list[tuple[Path, CallScript]]) -> None:
    switch = Switch(fork_build=args.fork_build)
    options = _options(args)
    try:
        # As FreeSWITCH after start-up: originates route through its dialplan and gateways.
        load_deployment(switch, options)
    except ConfError as exc:
        print(f"callsim: no dialplan or gateways loaded: {exc}", file=sys.stderr, flush=True)
    switch.callees.update(_static_callees(args.callee))
    reports = Path(args.reports) if args.reports else _default_reports(options.recordings)
    book = CalleeBook(switch, options, reports)
    for path, script in callees:
        book.add(path, script)
    if callees:
        print(
            f"callsim: {len(callees)} callees from {args.callees}; reports in {reports}",
            file=sys.stderr,
            flush=True,
        )
    server = EslServer(switch, args.esl_password, args.esl_host, args.esl_port)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"callsim: Event Socket on {args.esl_host}:{server.port}", file=sys.stderr, flush=True)
    control: asyncio.Task[None] | None = None
    web: uvicorn.Server | None = None
    if args.control_port:
        app = create_control_app(switch, _options(args))
        web = uvicorn.Server(
            uvicorn.Config(app, host=args.control_host, port=args.control_port, log_config=None)
        )
        control = asyncio.create_task(web.serve())
        print(
            f"callsim: control port on http://{args.control_host}:{args.control_port} "
            "(callsim run --emulator ...)",
            file=sys.stderr,
            flush=True,
        )
    await stop.wait()
    if web is not None and control is not None:
        web.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await control
    await book.aclose()
    await server.close()


def _default_reports(recordings: Path) -> Path:
    """Beside the recordings: recordings/callsim → recordings/callsim-reports."""
    return recordings.with_name(recordings.name + "-reports")


async def _run_local(args: argparse.Namespace, scripts: list[Any]) -> list[dict[str, Any]]:
    """Host the emulator in this process (the bridge connects to our Event Socket)."""
    switch = Switch(fork_build=args.fork_build)
    server: EslServer | None = None
    if args.esl_port:
        if not args.esl_password:
            raise SystemExit("callsim run: --esl-password (or CALLSIM_ESL_PASSWORD) is required")
        server = EslServer(switch, args.esl_password, args.esl_host, args.esl_port)
        await server.start()
        print(f"callsim: Event Socket on {args.esl_host}:{server.port}", file=sys.stderr)
        deadline = time.monotonic() + args.wait_for_bridge
        while time.monotonic() < deadline and not switch.listeners:  # noqa: ASYNC110 (no event to wait on: listeners is a plain list)
            await asyncio.sleep(0.1)
    reports = []
    progress = Progress()
    try:
        for path, script in scripts:
            report = await run_call(switch, script, _options(args), progress)
            progress.done()
            report["file"] = str(path)
            reports.append(report)
            print("\n".join(summary_lines(report)), file=sys.stderr, flush=True)
    finally:
        if server is not None:
            await server.close()
    return reports


async def _run_remote(args: argparse.Namespace, scripts: list[Any]) -> list[dict[str, Any]]:
    """Place the calls on a running `callsim serve --control-port` (the stack's emulator)."""
    options = _options(args)
    reports = []
    progress = Progress()
    async with httpx.AsyncClient(timeout=None) as client:
        for path, script in scripts:
            body = {
                "script": script.model_dump(mode="json"),
                "options": {
                    k: v
                    for k, v in {
                        "fork_url": args.fork_url if args.fork_url != DEFAULT_FORK_URL else None,
                        "redis_url": options.redis_url,
                    }.items()
                    if v is not None
                },
            }
            report: dict[str, Any] | None = None
            async with client.stream("POST", f"{args.emulator.rstrip('/')}/calls", json=body) as r:
                if r.status_code != 200:
                    raise SystemExit(
                        f"callsim run: the emulator refused the call: {await r.aread()!r}"
                    )
                async for line in r.aiter_lines():
                    if not line:
                        continue
                    message = json.loads(line)
                    if "progress" in message:
                        progress(message["progress"])
                    elif "report" in message:
                        report = message["report"]
            progress.done()
            if report is None:
                raise SystemExit("callsim run: the emulator ended the call without a report")
            report["file"] = str(path)
            reports.append(report)
            print("\n".join(summary_lines(report)), file=sys.stderr, flush=True)
    return reports


def _suite_summary(reports: list[dict[str, Any]]) -> dict[str, Any]:
    v2v = [t["v2v_ms"] for r in reports for t in r.get("turns", []) if t["v2v_ms"] is not None]
    stops = [
        b["stop_latency_ms"]
        for r in reports
        for b in r.get("barge_ins", [])
        if b["should_stop"] and b["stop_latency_ms"] is not None
    ]
    return {
        "calls": len(reports),
        "passed": sum(bool(r.get("passed")) for r in reports),
        "v2v_p50_ms": percentile(v2v, 0.5),
        "v2v_p95_ms": percentile(v2v, 0.95),
        "barge_in_stop_p50_ms": percentile(stops, 0.5),
        "barge_in_stop_p95_ms": percentile(stops, 0.95),
        **interjection_summary(
            [b for r in reports for b in r.get("barge_ins", [])],
            [t for r in reports for t in r.get("turns", [])],
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="callsim", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def switch_args(p: argparse.ArgumentParser, esl_port: int) -> None:
        p.add_argument("--esl-host", default="127.0.0.1", help="interface to listen on")
        p.add_argument(
            "--esl-port",
            type=int,
            default=esl_port,
            help=f"Event Socket port (default {esl_port}; 0 = any free port"
            + (", or none for run" if esl_port == 0 else "")
            + ")",
        )
        p.add_argument(
            "--esl-password",
            default=os.environ.get("CALLSIM_ESL_PASSWORD"),
            help="Event Socket password (or CALLSIM_ESL_PASSWORD)",
        )
        p.add_argument(
            "--fork-build",
            choices=["drachtio", "jambonz"],
            default="drachtio",
            help="which mod_audio_fork build to emulate (playAudio files, or streamed audio)",
        )
        p.add_argument(
            "--fork-url",
            default=DEFAULT_FORK_URL,
            help="where the inbound dialplan forks call audio ({uuid} is the call's uuid)",
        )
        p.add_argument(
            "--fork-auth",
            help="USER:PASSWORD for the fork's Basic auth (or CALLSIM_FORK_AUTH)",
        )
        p.add_argument("--redis-url", help="read outcomes and agent sentences from this Redis")
        p.add_argument(
            "--asr-url",
            default=os.environ.get("CALLSIM_ASR_URL"),
            help="the ASR gateway (http://host:port): report offline word errors of the caller "
            "channel next to the call's own (or CALLSIM_ASR_URL)",
        )
        p.add_argument(
            "--recordings", default="recordings/callsim", help="folder for the stereo recordings"
        )

    serve = sub.add_parser("serve", help="run the emulated switch for a bridge (and callsim run)")
    switch_args(serve, 8021)
    serve.add_argument(
        "--callee",
        action="append",
        default=[],
        metavar="NUMBER=OUTCOME[:RING_S]",
        help="how a dialled number behaves: answer, busy, reject, no_answer or unallocated "
        "(repeatable)",
    )
    serve.add_argument(
        "--callees",
        type=Path,
        help="a folder of outbound call scripts: the people the dialer calls (caller.number is "
        "the number dialled)",
    )
    serve.add_argument(
        "--reports",
        help="where each callee call's JSON report goes (default: beside the recordings, "
        "<recordings>-reports)",
    )
    serve.add_argument("--control-host", default="127.0.0.1")
    serve.add_argument(
        "--control-port",
        type=int,
        default=0,
        help="HTTP port for `callsim run --emulator` (0: off)",
    )

    run = sub.add_parser("run", help="play call scripts and report on them")
    run.add_argument(
        "--script", required=True, type=Path, help="a call script, or a folder of them"
    )
    run.add_argument("--report", type=Path, help="write the JSON report here")
    run.add_argument(
        "--emulator",
        help="control URL of a running `callsim serve --control-port` (else the emulator runs here)",
    )
    run.add_argument(
        "--wait-for-bridge",
        type=float,
        default=15.0,
        help="with --esl-port: seconds to wait for the bridge's Event Socket connection",
    )
    switch_args(run, 0)
    args = parser.parse_args(argv)
    configure_logging("WARNING" if args.command == "run" else "INFO", "text", service="callsim")

    if args.command == "serve":
        if not args.esl_password:
            print("callsim: --esl-password (or CALLSIM_ESL_PASSWORD) is required", file=sys.stderr)
            return 2
        try:
            callees = load_scripts(args.callees) if args.callees else []
            check_scripts(callees)
            _static_callees(args.callee)
        except AgentError as exc:
            print(f"callsim serve: {exc.message}", file=sys.stderr)
            return 2
        asyncio.run(_serve(args, callees))
        return 0
    try:
        scripts = load_scripts(args.script)
    except AgentError as exc:
        print(f"callsim run: {exc.message}", file=sys.stderr)
        return 2
    reports = asyncio.run(
        _run_remote(args, scripts) if args.emulator else _run_local(args, scripts)
    )
    result: dict[str, Any] = (
        reports[0]
        if len(reports) == 1
        else {
            "summary": _suite_summary(reports),
            "calls": reports,
        }
    )
    if len(reports) > 1:
        s = result["summary"]
        print(
            f"\n{s['passed']}/{s['calls']} calls passed; v2v p50 {s['v2v_p50_ms']} ms, p95 "
            f"{s['v2v_p95_ms']} ms; barge-in stop p50 {s['barge_in_stop_p50_ms']} ms",
            file=sys.stderr,
        )
        line = interjection_line(s)
        if line:
            print(line, file=sys.stderr)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
        print(f"report: {args.report}", file=sys.stderr)
    return 0 if all(r.get("passed") for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
