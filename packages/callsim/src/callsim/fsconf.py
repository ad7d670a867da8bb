"""The deployment's FreeSWITCH configuration (freeswitch/conf), read the way FreeSWITCH reads it.

FreeSWITCH does not parse its XML files directly: a line-based preprocessor first expands
``$${name}`` from global variables, runs ``X-PRE-PROCESS`` directives (``set``, ``include``),
drops lines holding ``<include>``, ``</include>`` or ``<?`` and only then hands the text to the
XML parser (switch_xml.c, ``preprocess``). Mistakes in that step do not fail loudly in
FreeSWITCH: an undefined variable becomes an empty string, a directive inside an XML comment
still runs, an include that matches nothing is only logged. ``load`` reproduces the step and
reports each of those as a problem, so both the emulator (which routes calls through the real
dialplan) and the static checks see exactly what the switch would.

The image's entrypoint renders secrets and per-deployment values from the environment into
``env.xml``; ``render`` runs that same script on a copy of the configuration.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: Variables the core sets before it reads the configuration (switch_core.c).
BUILTIN_GLOBALS = {
    "local_ip_v4": "127.0.0.1",
    "local_mask_v4": "255.0.0.0",
    "local_ip_v6": "::1",
    "hostname": "freeswitch",
    "base_dir": "/usr/local/freeswitch",
    "conf_dir": "/etc/freeswitch",
    "log_dir": "/var/log/freeswitch",
    "run_dir": "/var/run/freeswitch",
    "db_dir": "/var/lib/freeswitch/db",
    "recordings_dir": "/var/lib/freeswitch/recordings",
    "sounds_dir": "/usr/share/freeswitch/sounds",
    "storage_dir": "/var/lib/freeswitch/storage",
    "cache_dir": "/var/cache/freeswitch",
    "temp_dir": "/tmp",
}

#: freeswitch/ of the repository this package is installed from (an editable install).
DEFAULT_DIR = Path(__file__).resolve().parents[4] / "freeswitch"

_DIRECTIVE = re.compile(r"<\s*X-PRE-PROCESS\b(?P<rest>.*)", re.IGNORECASE)
_ATTR = re.compile(r'(cmd|data)\s*=\s*"([^"]*)"', re.IGNORECASE)
_GLOBAL = re.compile(r"\$\$\{([^}]*)\}")


class ConfError(Exception):
    """The configuration cannot be read at all (no top file, the XML does not parse)."""


@dataclass
class Config:
    """The preprocessed configuration: its document, the globals it set, what went wrong."""

    root: ET.Element
    globals: dict[str, str]
    problems: list[str] = field(default_factory=list)
    text: str = ""

    def section(self, name: str) -> ET.Element | None:
        return next((s for s in self.root.iter("section") if s.get("name") == name), None)

    def configuration(self, name: str) -> ET.Element | None:
        conf = self.section("configuration")
        if conf is None:
            return None
        return next((c for c in conf.iter("configuration") if c.get("name") == name), None)

    def gateways(self) -> set[str]:
        """The names every SIP profile's gateways go by (sofia/gateway/<name>/…)."""
        sofia = self.configuration("sofia.conf")
        if sofia is None:
            return set()
        return {g.get("name", "") for g in sofia.iter("gateway")} - {""}

    def inbound_context(self) -> str:
        """The dialplan context the SIP profile sends incoming calls to."""
        sofia = self.configuration("sofia.conf")
        if sofia is not None:
            for param in sofia.iter("param"):
                if param.get("name") == "context":
                    return param.get("value", "default")
        return "default"

    def dialplan(self) -> Dialplan:
        plan = self.section("dialplan")
        if plan is None:
            raise ConfError("the configuration has no dialplan section")
        return Dialplan(plan)


@dataclass
class _Reader:
    globals: dict[str, str]
    problems: list[str]
    out: list[str] = field(default_factory=list)
    depth: int = 0

    def read(self, path: Path, shown: str) -> None:
        if self.depth > 100:
            self.problems.append(f"{shown}: includes nest deeper than 100 levels")
            return
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            self.problems.append(f"{shown}: cannot be read ({exc.strerror})")
            return
        in_comment = False  # only for the lint: FreeSWITCH itself ignores comments here
        for number, raw in enumerate(lines, 1):
            where = f"{shown}:{number}"
            line = self._expand(raw, where)
            # FreeSWITCH drops the whole line: anything else on it is lost.
            if "<include>" in raw or "</include>" in raw or "<?" in raw:
                rest = re.sub(r"</?include>|<\?.*?\?>", "", raw).strip()
                if rest:
                    self.problems.append(
                        f"{where}: the preprocessor drops this whole line (it holds <include>, "
                        f"</include> or <?), so {rest[:40]!r} is lost; put it on its own line"
                    )
                continue
            directive = _DIRECTIVE.search(line)
            if directive:
                if in_comment or "<!--" in line[: directive.start()]:
                    self.problems.append(
                        f"{where}: X-PRE-PROCESS inside an XML comment still runs; rename or "
                        "remove it"
                    )
                self._directive(directive.group("rest"), path.parent, where)
                in_comment = self._comment_state(line, in_comment)
                continue
            in_comment = self._comment_state(line, in_comment)
            self.out.append(line)

    @staticmethod
    def _comment_state(line: str, in_comment: bool) -> bool:
        i = 0
        while True:
            if in_comment:
                end = line.find("-->", i)
                if end < 0:
                    return True
                in_comment, i = False, end + 3
            else:
                start = line.find("<!--", i)
                if start < 0:
                    return False
                in_comment, i = True, start + 4

    def _expand(self, line: str, where: str) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.globals:
                self.problems.append(
                    f"{where}: $${{{name}}} is not defined at this point (FreeSWITCH would "
                    "silently use an empty string)"
                )
                return ""
            return self.globals[name]

        return _GLOBAL.sub(value, line)

    def _directive(self, rest: str, cwd: Path, where: str) -> None:
        attrs = {k.lower(): v for k, v in _ATTR.findall(rest)}
        cmd, data = attrs.get("cmd", "").lower(), attrs.get("data")
        if data is None or not cmd:
            self.problems.append(f'{where}: X-PRE-PROCESS needs cmd="…" and data="…"')
            return
        if cmd == "set":
            name, eq, val = data.partition("=")
            if not eq or not name.strip():
                self.problems.append(f"{where}: set needs name=value (got {data!r})")
                return
            self.globals[name.strip()] = val.strip(" ")
        elif cmd == "include":
            pattern = data if os.path.isabs(data) else str(cwd / data)
            matches = sorted(
                Path(p)
                for p in _glob(pattern)
                if Path(p).is_file()  # FreeSWITCH logs and skips what it cannot open
            )
            if not matches:
                self.problems.append(f"{where}: include {data!r} matches no file")
            self.depth += 1
            for match in matches:
                self.read(match, _shown(match))
            self.depth -= 1
        else:
            self.problems.append(
                f"{where}: X-PRE-PROCESS cmd={cmd!r} is not used by this deployment (only set "
                "and include are)"
            )


def _glob(pattern: str) -> list[str]:
    directory, name = os.path.split(pattern)
    if not os.path.isdir(directory):
        return []
    return [os.path.join(directory, n) for n in os.listdir(directory) if fnmatch.fnmatch(n, name)]


def _shown(path: Path) -> str:
    parts = path.resolve().parts
    if "conf" in parts:
        return "/".join(parts[len(parts) - parts[::-1].index("conf") - 1 :])
    return path.name


def load(conf_dir: Path, globals: Mapping[str, str] | None = None) -> Config:
    """Preprocess and parse ``conf_dir/freeswitch.xml`` as FreeSWITCH would at start-up."""
    top = conf_dir / "freeswitch.xml"
    if not top.is_file():
        raise ConfError(f"{top} does not exist")
    reader = _Reader({**BUILTIN_GLOBALS, **(globals or {})}, [])
    reader.read(top, _shown(top))
    text = "\n".join(reader.out)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        line = exc.position[0]
        context = reader.out[line - 1].strip() if 0 < line <= len(reader.out) else ""
        raise ConfError(f"the preprocessed XML does not parse: {exc} near {context!r}") from None
    return Config(root, reader.globals, reader.problems, text)


def render(freeswitch_dir: Path, env: Mapping[str, str]) -> Config:
    """Run the image's entrypoint on a copy of the configuration with ``env``, then ``load`` it.

    Raises ConfError with the entrypoint's own message when it refuses the environment.
    """
    entrypoint = freeswitch_dir / "docker-entrypoint.sh"
    with tempfile.TemporaryDirectory(prefix="fsconf-") as tmp:
        conf = Path(tmp) / "conf"
        shutil.copytree(freeswitch_dir / "conf", conf)
        proc = subprocess.run(
            ["sh", str(entrypoint), "true"],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env, "FS_CONF_DIR": str(conf)},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if proc.returncode != 0:
            raise ConfError(proc.stderr.strip().splitlines()[-1] if proc.stderr else "refused")
        return load(conf)


# ---------------------------------------------------------------------------------- dialplan


def _captures(data: str, match: re.Match[str]) -> str:
    """``$1``…``$9`` replaced by the condition's captures (a missing one is empty)."""

    def one(m: re.Match[str]) -> str:
        n = int(m.group(1))
        return (match.group(n) or "") if n <= match.re.groups else ""

    return re.sub(r"\$(\d)", one, data)


_CHANNEL_VAR = re.compile(r"\$\{([^{}()]+)\}")


def expand(data: str, variables: Mapping[str, str]) -> str:
    """``${name}`` expansion as the switch does it when an application runs (unset: empty).

    ``${api(args)}`` is an API call, not a variable: it is left for the switch to run."""
    return _CHANNEL_VAR.sub(lambda m: variables.get(m.group(1), ""), data)


@dataclass(frozen=True)
class Action:
    application: str
    data: str


class Dialplan:
    """The XML dialplan's hunt (mod_dialplan_xml): contexts, extensions, conditions, actions."""

    def __init__(self, section: ET.Element) -> None:
        self.section = section

    def context(self, name: str) -> ET.Element | None:
        return next((c for c in self.section.iter("context") if c.get("name") == name), None)

    def hunt(self, context: str, variables: Mapping[str, str]) -> tuple[str, list[Action]] | None:
        """The first extension of ``context`` that matches, and the actions it queues.

        Conditions are tested in order against the caller profile / channel variables; a
        passing condition queues its actions, a failing one its anti-actions; ``break``
        (on-false by default, on-true, always, never) decides whether the next is tested. ``$N``
        in an action is replaced by that condition's capture, ``${var}`` is left for run time.
        """
        ctx = self.context(context)
        if ctx is None:
            return None
        for ext in ctx.findall("extension"):
            queued: list[Action] = []
            matched = False
            for cond in ext.findall("condition"):
                fld, expression = cond.get("field"), cond.get("expression")
                match: re.Match[str] | None = None
                if fld is None:
                    passed = True
                else:
                    subject = expand(fld, variables) if "${" in fld else variables.get(fld, "")
                    match = re.search(expression or "", subject)
                    passed = match is not None
                tag = "action" if passed else "anti-action"
                for item in cond.findall(tag):
                    data = item.get("data", "")
                    if match is not None:
                        data = _captures(data, match)
                    queued.append(Action(item.get("application", ""), data))
                matched = matched or passed
                rule = cond.get("break", "on-false")
                if (
                    rule == "always"
                    or (rule == "on-false" and not passed)
                    or (rule == "on-true" and passed)
                ):
                    if not passed and rule == "on-false":
                        matched = False
                    break
            if matched and queued:
                return ext.get("name", ""), queued
        return None
