"""The whole stack on this machine, on embedded defaults: serve, stop, status, demo.

  python scripts/stack.py serve    start every service that is not running, leave them running
  python scripts/stack.py stop     stop what `serve` started
  python scripts/stack.py status   what answers on which port
  python scripts/stack.py demo     serve, place a scripted booking call, show it, stop what it started
  python scripts/stack.py demo-outbound   serve with callsim's callees, run a small campaign, show it

Services run as `python -m <service>` on their standard ports, with callsim as the FreeSWITCH
(Event Socket on 8021, control port 8022, so `callsim run --emulator http://127.0.0.1:8022`
works against a served stack). Passwords are generated once into .run/stack.env (mode 600);
logs go to .run/logs/. Which services, their ports and how they start: packages/devstack.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from callkit.contracts.outcome import CallOutcome
from devstack import ROOT
from devstack.served import PORTS, RUN, environment, serve, status, stop_served

DEMO_SCRIPT = ROOT / "tests" / "calls" / "booking_knee.yaml"
CONTROL = f"http://127.0.0.1:{PORTS.control}"


def _follow(
    redis_url: str, stop_flag: threading.Event, started: float, show: Callable[[Any], None]
) -> None:
    """Hand every live event on calls:events since ``started`` to ``show``, until stopped."""
    import redis

    from callkit.contracts import live
    from callkit.contracts.streams import CALLS_EVENTS
    from callkit.errors import InvalidInput

    client = redis.Redis.from_url(redis_url)
    last = f"{int(started * 1000)}-0"
    try:
        while not stop_flag.is_set():
            for _, entries in client.xread({CALLS_EVENTS: last}, block=300) or []:
                for entry_id, fields in entries:
                    last = entry_id
                    try:
                        show(live.parse_entry(fields))
                    except InvalidInput:
                        continue  # a broken entry or a kind this version does not know
    finally:
        client.close()


def _live_transcript(redis_url: str, stop_flag: threading.Event, started: float) -> None:
    """Print the two sides as the bridge publishes them on calls:events."""
    from callkit.contracts import live

    # The demo's call is the first one to start after the watcher; a stack that `make serve`
    # left running may carry other calls on the same stream.
    demo_call: list[str] = []

    def show(event: Any) -> None:
        if not demo_call and isinstance(event, live.LiveCallStarted):
            demo_call.append(event.call_id)
        if event.call_id not in demo_call:
            return
        t = (event.t_ms or 0) / 1000
        if isinstance(event, live.CallerFinal):
            print(f"  {t:6.1f}s  caller: {event.text}", flush=True)
        elif isinstance(event, live.AgentSentence):
            print(f"  {t:6.1f}s  agent:  {event.text}", flush=True)
        elif isinstance(event, live.BargeIn):
            print(f"  {t:6.1f}s  (the caller cut in)", flush=True)

    _follow(redis_url, stop_flag, started, show)


def demo() -> int:
    t0 = time.monotonic()
    print("Starting the stack (embedded LLM, ASR, TTS, policy, notifier, bridge, callsim):")
    redis_url, started = serve()
    report_path = RUN / "demo" / "report.json"
    report_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"\nPlacing a scripted inbound call ({DEMO_SCRIPT.relative_to(ROOT)}):")
    flag = threading.Event()
    watcher = threading.Thread(
        target=_live_transcript, args=(redis_url, flag, time.time()), daemon=True
    )
    watcher.start()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "callsim", "run", "--script", str(DEMO_SCRIPT), "--emulator", CONTROL,
             "--redis-url", redis_url, "--report", str(report_path)],
            cwd=ROOT, env={**os.environ, **environment(redis_url)}, capture_output=True, text=True,
            check=False,
        )  # fmt: skip
    finally:
        flag.set()
        watcher.join(2)
    if not report_path.exists():
        print(done.stderr)
        print("error: the call produced no report")
        return 1
    report = json.loads(report_path.read_text())
    print("\nPer-turn latency (the fork's audio timeline):")
    print(f"  {'turn':<5} {'caller said':<48} {'speech end':>10} {'agent audio':>11} {'v2v':>7}")
    for turn in report.get("turns", []):
        v2v = f"{turn['v2v_ms']} ms" if turn["v2v_ms"] is not None else "-"
        print(
            f"  {turn['index']:<5} {turn['text'][:48]:<48} {turn['caller_speech_end_ms']:>8} ms"
            f" {turn['agent_first_audio_ms'] or '-':>8} ms {v2v:>7}"
        )
    v = report.get("v2v", {})
    print(f"  v2v p50 {v.get('p50_ms')} ms, p95 {v.get('p95_ms')} ms")
    outcome = CallOutcome.model_validate(report["outcome"]) if report.get("outcome") else None
    status_ = outcome.status if outcome is not None else None
    print(f"\nOutcome: {status_ or 'none on calls:completed'}")
    if outcome is not None:
        lat = outcome.latency
        print(
            f"  its latency (the bridge's): v2v p50 {_ms(lat.v2v_p50_ms)}, p95 {_ms(lat.v2v_p95_ms)}"
            f" ({len(lat.v2v_ms)} turns); barge-ins: {lat.barge_ins}"
        )
    row = _csv_row(report.get("call_id"))
    if row:
        print(f"Row appended to data/calls.csv: {row}")
    print(f"Recording (caller left, agent right): {report.get('recording')}")
    bridge_recording = outcome.recording_path if outcome is not None else None
    print(f"Bridge recording (from the outcome): {bridge_recording or 'none'}")
    print(f"Report: {report_path}   ({time.monotonic() - t0:.0f} s in all)")
    if started:
        print("\nStopping what the demo started:")
        stop_served(started, procs=started)
    if status_ != "booked":
        print("error: the call did not book", file=sys.stderr)
        return 1
    return 0


OUTBOUND_CALLEES = ROOT / "tests" / "calls" / "outbound"
#: The demo campaign: (number, name, what the callee script does, the outcome expected).
OUTBOUND_CONTACTS = (
    ("+12125550111", "John Smith", "books an MRI of the knee", "booked"),
    ("+12125550122", "Mary Jones", "is busy, then answers the retry", "not_interested"),
    ("+12125550133", "Ann Lee", "never answers", "no_answer"),
    ("+12125550166", "Tom Ford", "is on the do-not-call list", "skipped_dnc"),
)


def _agent_lines(redis_url: str, stop_flag: threading.Event, started: float, campaign: str) -> None:
    """Both sides of every answered call of the campaign, each line tagged with its call."""
    from callkit.contracts import live

    tags: dict[str, str] = {}

    def show(event: Any) -> None:
        if isinstance(event, live.LiveCallStarted) and event.campaign_id == campaign:
            tags[event.call_id] = f"call {len(tags) + 1}"
            print(f"    [{tags[event.call_id]}] answered", flush=True)
        who = tags.get(event.call_id)
        if who is not None and isinstance(event, live.CallerFinal):
            print(f"    [{who}] caller: {event.text}", flush=True)
        elif who is not None and isinstance(event, live.AgentSentence):
            print(f"    [{who}] agent:  {event.text}", flush=True)

    _follow(redis_url, stop_flag, started, show)


def demo_outbound() -> int:
    """A campaign of four contacts on callsim's callees, shown live, ending with its rows."""
    import httpx

    from devstack.served import passwords

    t0 = time.monotonic()
    os.environ["CALLEES"] = str(OUTBOUND_CALLEES)
    print("Starting the stack with callsim playing the campaign's callees "
          f"({OUTBOUND_CALLEES.relative_to(ROOT)}):")  # fmt: skip
    redis_url, started = serve()
    if "callsim" not in started:
        print("  note: callsim was already running; if it was started without CALLEES, "
              "`make stop` first", flush=True)  # fmt: skip
    token = passwords()["DIALER_API_TOKEN"]
    api = httpx.Client(
        base_url=f"http://127.0.0.1:{PORTS.dialer}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    day = [{"start": "00:00", "end": "24:00"}]
    campaign = {
        "name": "Demo: knee MRI follow-up",
        "purpose": "service",
        "profile": "none",  # the demo calls at any hour; a real campaign sets us, uk or ru
        "windows": {"hours": {d: day for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}},
        "retry": {"max_attempts": 2, "busy_after_min": 0.25, "no_answer_after_min": 0.25},
        # The demo's numbers are fictional and it may run many times a day; a real campaign
        # keeps the default caps (2 a day, 5 a week, 10 a month per number).
        "caps": {"per_day": 100, "per_week": 500, "per_month": 1000},
        "originate_timeout_s": 8,
        "concurrency": 2,
    }
    contacts = [{"phone": n, "name": name} for n, name, _, _ in OUTBOUND_CONTACTS]
    print("\nThe campaign:")
    for number, name, does, _ in OUTBOUND_CONTACTS:
        print(f"  {name:<12} {number}  {does}")
    api.post("/dnc", json={"number": OUTBOUND_CONTACTS[3][0]}).raise_for_status()
    created = api.post("/campaigns", json={"campaign": campaign, "contacts": contacts})
    created.raise_for_status()
    campaign_id = created.json()["id"]
    flag = threading.Event()
    watcher = threading.Thread(
        target=_agent_lines, args=(redis_url, flag, time.time(), campaign_id), daemon=True
    )
    watcher.start()
    api.post(f"/campaigns/{campaign_id}/start").raise_for_status()
    print(f"\nCampaign {campaign_id} started (agent-campaign status {campaign_id}):")
    seen: dict[str, tuple[str, str | None]] = {}
    deadline = time.monotonic() + 480
    view: dict[str, object] = {}
    try:
        while time.monotonic() < deadline:
            view = api.get(f"/campaigns/{campaign_id}").json()
            for contact in api.get(f"/campaigns/{campaign_id}/contacts").json():
                now = (contact["state"], contact["outcome"] or contact["reason"])
                if seen.get(contact["phone"]) != now:
                    seen[contact["phone"]] = now
                    name = contact["name"] or contact["phone"]
                    detail = f" ({now[1]})" if now[1] else ""
                    print(f"  {time.monotonic() - t0:6.0f}s  {name:<12} {now[0]}{detail}"
                          f", attempts {contact['attempts']}", flush=True)  # fmt: skip
            if view["state"] in ("completed", "cancelled", "paused"):
                break
            time.sleep(0.5)
    finally:
        flag.set()
        watcher.join(2)
    final = {c["phone"]: c for c in api.get(f"/campaigns/{campaign_id}/contacts").json()}
    print(f"\nCampaign {view.get('state')}: {view.get('counts')}")
    failed = False
    for number, name, _, expected in OUTBOUND_CONTACTS:
        got = final[number]["outcome"]
        mark = "ok" if got == expected else f"EXPECTED {expected}"
        failed |= got != expected
        print(
            f"  {name:<12} {got or final[number]['state']:<15} attempts {final[number]['attempts']}  {mark}"
        )
    time.sleep(3)  # the notifier's last batch
    rows = _campaign_rows(campaign_id)
    print(f"\nRows appended to data/calls.csv for this campaign ({len(rows)}):")
    for row in rows:
        print(f"  {row}")
    print(f"({time.monotonic() - t0:.0f} s in all)")
    if started:
        print("\nStopping what the demo started:")
        stop_served(started, procs=started)
    os.environ.pop("CALLEES", None)
    if failed:
        print("error: a contact did not end as its callee script says", file=sys.stderr)
        return 1
    return 0


def _campaign_rows(campaign_id: str) -> list[list[str]]:
    path = ROOT / "data" / "calls.csv"
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return [row for row in csv.reader(f) if campaign_id in row]


def _ms(value: float | None) -> str:
    return f"{value:.0f} ms" if value is not None else "-"


def _csv_row(call_id: str | None) -> list[str] | None:
    path = ROOT / "data" / "calls.csv"
    for _ in range(50):
        if call_id and path.exists():
            with path.open(newline="", encoding="utf-8") as f:
                for row in csv.reader(f):
                    if call_id in row:
                        return row
        time.sleep(0.2)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["serve", "stop", "status", "demo", "demo-outbound"])
    args = parser.parse_args()
    if args.command == "serve":
        serve()
        print(f"\nThe stack is running. Try: .venv/bin/callsim run --emulator {CONTROL} "
              "--script tests/calls/booking_knee.yaml   (make stop to stop it)")  # fmt: skip
        print("Campaigns: set -a; . .run/stack.env; set +a; .venv/bin/agent-campaign create "
              "contacts.csv --name test --start --watch   (callees: make serve CALLEES=DIR)")  # fmt: skip
        return 0
    if args.command == "stop":
        stop_served()
        return 0
    if args.command == "status":
        status()
        return 0
    if args.command == "demo-outbound":
        return demo_outbound()
    return demo()


if __name__ == "__main__":
    sys.exit(main())
