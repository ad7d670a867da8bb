"""The people a campaign calls: outbound scripts that wait on `callsim serve` for the dialer.

``callsim serve --callees DIR`` loads every ``*.yaml`` in DIR; each must be an outbound script
(``direction: outbound``) whose ``caller.number`` is the number the dialer dials. Each call the
dialer originates to that number plays the script's ``outbound`` behaviour for that attempt
(``attempts: [busy, answer]``, else ``outcome``): the switch fails the originate with the
carrier's cause, or the callee answers after its rings and the script's caller runs on the
answered channel, exactly as in ``callsim run``, so the agent talks to it. Every attempt leaves a
JSON report in the reports folder, named by the call's uuid: the full report of an answered call
once it ends, a short one (the outcome and the hang-up cause) for one that was not answered.
Calls to several numbers, and several calls to one number, run at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from callkit.errors import ConfigError
from callsim.run import RunOptions, answer, callee_of, play
from callsim.script import CallScript, load_scripts
from callsim.switch import Callee, Channel, Switch

log = logging.getLogger("callsim.callees")


@dataclass
class _Entry:
    path: Path
    script: CallScript
    callee: Callee


def check_scripts(scripts: list[tuple[Path, CallScript]]) -> None:
    """Refuse what cannot be a callee: an inbound script, two scripts for one number."""
    numbers: dict[str, Path] = {}
    for path, script in scripts:
        if script.direction != "outbound":
            raise ConfigError(f"{path}: a callee script needs direction: outbound")
        number = script.caller.number.lstrip("+")
        if number in numbers:
            raise ConfigError(f"{path}: {numbers[number]} already answers for the same number")
        numbers[number] = path


class CalleeBook:
    """Installs scripted callees on a switch and keeps the report of every call they take."""

    def __init__(self, switch: Switch, options: RunOptions, reports: Path) -> None:
        self.switch = switch
        self.options = options
        self.reports = reports
        self.entries: dict[str, _Entry] = {}
        self._calls: set[asyncio.Task[None]] = set()
        self._channels: dict[asyncio.Task[None], Channel] = {}

    def load(self, folder: Path) -> int:
        """Every outbound script in ``folder``; how many were installed."""
        scripts = load_scripts(folder)
        check_scripts(scripts)
        for path, script in scripts:
            self.add(path, script)
        return len(scripts)

    def add(self, path: Path, script: CallScript) -> None:
        if script.direction != "outbound":
            raise ConfigError(f"{path}: a callee script needs direction: outbound")
        number = script.caller.number
        if number in self.entries or self.switch.callee_for(number) is not None:
            raise ConfigError(f"{path}: another callee already answers for this script's number")

        def on_answer(ch: Channel) -> None:
            self._answered(entry, ch)

        def on_failure(ch: Channel) -> None:
            self._write(ch.uuid, self._unanswered(entry, ch))

        entry = _Entry(path, script, callee_of(script, on_answer, on_failure))
        self.entries[number] = entry
        self.switch.callees[number] = entry.callee

    def _answered(self, entry: _Entry, ch: Channel) -> None:
        """Called inside the originate as the callee picks up: attach, then play in the back."""
        attempt = entry.callee.dialled
        caller = answer(self.switch, ch, entry.script, self.options, attempt)
        started = time.time()

        async def run() -> None:
            report = await play(self.switch, caller, entry.script, self.options, started)
            report.update(file=str(entry.path), attempt=attempt)
            self._write(ch.uuid, report)

        task = asyncio.get_running_loop().create_task(run())
        self._calls.add(task)
        self._channels[task] = ch
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._calls.discard(task)
        self._channels.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("a scripted callee's call failed", exc_info=task.exception())

    def _unanswered(self, entry: _Entry, ch: Channel) -> dict[str, Any]:
        attempt = entry.callee.dialled
        outcome = entry.script.outbound.outcome_of(attempt)
        return {
            "call_id": ch.uuid,
            "script": entry.script.name,
            "file": str(entry.path),
            "direction": "outbound",
            "attempt": attempt,
            "started_at": datetime.fromtimestamp(ch.created, UTC).isoformat(),
            "outcome": outcome,
            "hangup_cause": ch.hangup_cause,
            "note": f"the callee's outcome was {outcome}; no media",
            "errors": [],
            "passed": True,
        }

    def _write(self, call_id: str, report: dict[str, Any]) -> None:
        self.reports.mkdir(parents=True, exist_ok=True)
        path = self.reports / f"{call_id}.json"
        path.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
        log.info("callee report written", extra={"call_id": call_id, "report": str(path)})

    async def aclose(self, grace_s: float = 5.0) -> None:
        """Hang up the calls still running and give their reports ``grace_s`` to be written."""
        for entry in self.entries.values():
            entry.callee.on_answer = entry.callee.on_failure = None
        for ch in list(self._channels.values()):
            self.switch.hangup(ch, "SYSTEM_SHUTDOWN")
        if self._calls:
            await asyncio.wait(list(self._calls), timeout=grace_s)
        for task in list(self._calls):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
