"""The settings table in each service's README, generated from its settings class.

``python -m deploycheck.settings_doc --write`` rewrites the part of every README between
``<!-- settings:begin -->`` and ``<!-- settings:end -->`` (appending a Settings section when there
is none); ``check`` (used by ``deploycheck compose``) reports READMEs whose table no longer
matches the code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic_core import PydanticUndefined

from callkit.settings import ServiceSettings
from deploycheck.compose import settings_class

BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"
SERVICES = ("asr_gateway", "tts_gateway", "policy_engine", "llm", "notifier", "fs_bridge", "dialer")


def _default(info: Any) -> str:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        return "computed"
    value = info.default
    if value is PydanticUndefined or value is None:
        return "unset"
    if isinstance(value, list):
        return "`" + ",".join(str(v) for v in value) + "`" if value else "empty"
    return f"`{value}`"


def table(cls: type[ServiceSettings]) -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for field, info in cls.model_fields.items():
        text = (info.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{cls.env_name(field)}` | {_default(info)} | {text} |")
    return "\n".join(rows)


def section(cls: type[ServiceSettings]) -> str:
    return (
        f"{BEGIN}\n"
        "Generated from the settings class (`python -m deploycheck.settings_doc --write`); "
        "`--help` prints the same.\n\n"
        f"{table(cls)}\n{END}"
    )


def check(root: Path) -> list[str]:
    problems = []
    for package in SERVICES:
        cls = settings_class(package)
        readme = root / "services" / package / "README.md"
        if cls is None or not readme.is_file():
            continue
        text = readme.read_text(encoding="utf-8")
        if BEGIN not in text or END not in text:
            problems.append(f"services/{package}/README.md: no settings table (run {__name__})")
        elif section(cls) not in text:
            problems.append(
                f"services/{package}/README.md: the settings table does not match "
                f"{package}.settings (run python -m deploycheck.settings_doc --write)"
            )
    return problems


def write(root: Path) -> list[Path]:
    changed = []
    for package in SERVICES:
        cls = settings_class(package)
        readme = root / "services" / package / "README.md"
        if cls is None:
            continue
        text = readme.read_text(encoding="utf-8")
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            new = head + section(cls) + rest.split(END, 1)[1]
        else:
            new = text.rstrip("\n") + "\n\n## Settings\n\n" + section(cls) + "\n"
        if new != text:
            readme.write_text(new, encoding="utf-8")
            changed.append(readme)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploycheck.settings_doc", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path.cwd())
    parser.add_argument("--write", action="store_true", help="rewrite the READMEs' tables")
    args = parser.parse_args(argv)
    if args.write:
        for path in write(args.root):
            print(f"updated {path}")
        return 0
    problems = check(args.root)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
