"""`agent-campaign`: run outbound campaigns from a terminal through the dialer's API.

    agent-campaign create contacts.csv --name "Knee MRI follow-up" --purpose service
    agent-campaign start <id> --watch        # live progress until the campaign ends
    agent-campaign status <id>
    agent-campaign pause|resume|cancel <id>
    agent-campaign dnc add|remove|list [NUMBER]

The API's address and token come from DIALER_URL (default http://127.0.0.1:8086) and
DIALER_API_TOKEN, or --url and --token; `make serve` writes both to .run/stack.env.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8086"
FINAL = ("completed", "cancelled")


class CliError(Exception):
    pass


def _client(args: argparse.Namespace) -> httpx.Client:
    token = args.token or os.environ.get("DIALER_API_TOKEN")
    if not token:
        raise CliError("no API token: set DIALER_API_TOKEN or pass --token (see .run/stack.env)")
    url = args.url or os.environ.get("DIALER_URL") or DEFAULT_URL
    return httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=args.timeout
    )


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    try:
        reply = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach the dialer at {client.base_url}: {exc}") from None
    if reply.status_code >= 400:
        try:
            detail = reply.json().get("detail") or reply.text
        except ValueError:
            detail = reply.text
        raise CliError(f"{reply.status_code}: {detail}")
    return reply.json()


def bar(done: int, total: int, width: int = 30) -> str:
    """``[#########.....] 12/40`` for a terminal line."""
    filled = 0 if total <= 0 else round(width * min(done, total) / total)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


def progress_line(view: dict[str, Any]) -> str:
    states = view["counts"].get("state", {})
    outcomes = view["counts"].get("outcome", {})
    total = sum(states.values())
    finished = states.get("done", 0) + states.get("skipped", 0)
    live = states.get("dialing", 0) + states.get("in_call", 0)
    parts = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()) if v)
    line = f"{view['state']:<9} {bar(finished, total)}  live {live}"
    return line + (f"  | {parts}" if parts else "")


def show(view: dict[str, Any]) -> str:
    lines = [f"campaign {view['id']}  {view['name']!r}", f"  state   {view['state']}"]
    if view.get("reason"):
        lines.append(f"  reason  {view['reason']}")
    for group in ("state", "outcome"):
        counts = view["counts"].get(group, {})
        if counts:
            lines.append(
                f"  {group:<7} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            )
    if view.get("abandon_rate") is not None:
        lines.append(f"  abandon {view['abandon_rate']:.1%}")
    return "\n".join(lines)


def watch(client: httpx.Client, campaign_id: str, every_s: float, out: Any) -> dict[str, Any]:
    tty = out.isatty()
    while True:
        view: dict[str, Any] = _call(client, "GET", f"/campaigns/{campaign_id}")
        line = progress_line(view)
        out.write(("\r" + line + "\033[K") if tty else line + "\n")
        out.flush()
        if view["state"] in FINAL or view["state"] == "paused":
            if tty:
                out.write("\n")
            return view
        time.sleep(every_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="agent-campaign",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", help=f"dialer API (DIALER_URL, default {DEFAULT_URL})")
    parser.add_argument("--token", help="API token (DIALER_API_TOKEN)")
    parser.add_argument("--timeout", type=float, default=60.0, help="HTTP timeout, seconds")
    parser.add_argument("--json", action="store_true", help="print the API's JSON")
    commands = parser.add_subparsers(dest="command", required=True)

    create = commands.add_parser("create", help="create a campaign from a CSV (or JSON) file")
    create.add_argument("file", type=Path, help="CSV with a phone column, or a JSON file")
    create.add_argument("--name", required=True)
    create.add_argument("--purpose", choices=["informational", "service", "marketing"])
    create.add_argument("--profile", choices=["us", "uk", "ru", "none"])
    create.add_argument("--timezone", help="zone of contacts whose own is unknown")
    create.add_argument("--region", dest="default_region", help="country of numbers without +")
    create.add_argument("--concurrency", type=int)
    create.add_argument("--calls-per-second", dest="calls_per_second", type=float)
    create.add_argument("--max-attempts", dest="max_attempts", type=int)
    create.add_argument("--caller-id", dest="caller_id")
    create.add_argument("--trunk")
    create.add_argument("--locale")
    create.add_argument(
        "--on-voicemail",
        dest="on_voicemail",
        choices=["message", "hangup"],
        help="on an answering machine: leave the message after the beep (default) or hang up",
    )
    create.add_argument("--windows", help="calling windows as JSON, e.g. '{\"hours\": {...}}'")
    create.add_argument("--start", action="store_true", help="start it right away")
    create.add_argument("--watch", action="store_true", help="with --start: show progress")

    for name in ("start", "pause", "resume", "cancel", "status"):
        sub = commands.add_parser(name, help=f"{name} a campaign")
        sub.add_argument("id")
        if name in ("start", "resume", "status"):
            sub.add_argument("--watch", action="store_true", help="show live progress")
    commands.add_parser("list", help="all campaigns")
    contacts = commands.add_parser("contacts", help="a campaign's contacts and their state")
    contacts.add_argument("id")
    contacts.add_argument("--state")
    dnc = commands.add_parser("dnc", help="the do-not-call list")
    dnc.add_argument("action", choices=["add", "remove", "list"])
    dnc.add_argument("number", nargs="?")
    dnc.add_argument("--every", type=float, default=1.0, help=argparse.SUPPRESS)
    for sub in commands.choices.values():
        sub.set_defaults(every=1.0)

    args = parser.parse_args(argv)
    try:
        with _client(args) as client:
            return _run(client, args)
    except CliError as exc:
        print(f"agent-campaign: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _create(client: httpx.Client, args: argparse.Namespace) -> dict[str, Any]:
    fields = {
        key: getattr(args, key)
        for key in (
            "name",
            "purpose",
            "profile",
            "timezone",
            "default_region",
            "concurrency",
            "calls_per_second",
            "caller_id",
            "trunk",
            "locale",
            "on_voicemail",
            "windows",
        )
        if getattr(args, key) is not None
    }
    if args.max_attempts is not None:
        fields["retry"] = json.dumps({"max_attempts": args.max_attempts})
    if not args.file.exists():
        raise CliError(f"{args.file}: no such file")
    if args.file.suffix.lower() == ".json":
        try:
            contacts = json.loads(args.file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise CliError(f"{args.file}: not JSON: {exc}") from None
        campaign: dict[str, Any] = {
            k: (json.loads(v) if k in ("windows", "retry") else v) for k, v in fields.items()
        }
        return dict(
            _call(client, "POST", "/campaigns", json={"campaign": campaign, "contacts": contacts})
        )
    with args.file.open("rb") as handle:
        return dict(
            _call(
                client,
                "POST",
                "/campaigns",
                data={k: str(v) for k, v in fields.items()},
                files={"file": (args.file.name, handle, "text/csv")},
            )
        )


def _run(client: httpx.Client, args: argparse.Namespace) -> int:
    out = sys.stdout
    if args.command == "create":
        created = _create(client, args)
        if args.json:
            print(json.dumps(created, indent=1))
        else:
            print(
                f"campaign {created['id']}: {created['imported']} contacts imported, "
                f"{created['duplicates']} duplicates, {created['errors_total']} rows rejected"
            )
            for error in created["errors"][:20]:
                print(f"  row {error['row']}: {error['error']}")
            if created["errors_total"] > 20:
                print(f"  … and {created['errors_total'] - 20} more")
        if args.start:
            view = _call(client, "POST", f"/campaigns/{created['id']}/start")
            if args.watch:
                view = watch(client, created["id"], args.every, out)
            print(show(view))
        return 0
    if args.command in ("start", "pause", "resume", "cancel"):
        view = _call(client, "POST", f"/campaigns/{args.id}/{args.command}")
        if getattr(args, "watch", False):
            view = watch(client, args.id, args.every, out)
        print(json.dumps(view, indent=1) if args.json else show(view))
        return 0
    if args.command == "status":
        if args.watch:
            view = watch(client, args.id, args.every, out)
        else:
            view = _call(client, "GET", f"/campaigns/{args.id}")
        print(json.dumps(view, indent=1) if args.json else show(view))
        return 0
    if args.command == "list":
        views = _call(client, "GET", "/campaigns")
        if args.json:
            print(json.dumps(views, indent=1))
        for view in views if not args.json else []:
            print(f"{view['id']}  {view['state']:<9}  {view['name']}")
        return 0
    if args.command == "contacts":
        params = {"state": args.state} if args.state else {}
        rows = _call(client, "GET", f"/campaigns/{args.id}/contacts", params=params)
        if args.json:
            print(json.dumps(rows, indent=1))
        for row in rows if not args.json else []:
            print(
                f"{row['phone']:<16} {row['state']:<10} {row['outcome'] or '':<14} "
                f"attempts {row['attempts']}  {row['reason'] or ''}"
            )
        return 0
    if args.command == "dnc":
        if args.action == "list":
            entries = _call(client, "GET", "/dnc")
            for entry in entries:
                print(f"{entry['number']:<16} {entry['added_at']}  {entry['source']}")
            return 0
        if not args.number:
            raise CliError(f"dnc {args.action} needs a NUMBER")
        if args.action == "add":
            change = _call(client, "POST", "/dnc", json={"number": args.number})
            print(f"{change['number']}: {'added' if change['changed'] else 'already listed'}")
        else:
            change = _call(client, "DELETE", f"/dnc/{args.number}")
            print(f"{change['number']}: removed")
        return 0
    raise CliError(f"unknown command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
