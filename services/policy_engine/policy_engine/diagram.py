"""`python -m policy_engine.diagram`: the compiled script graph as a Mermaid diagram."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from callkit.errors import ConfigError
from policy_engine.graph import mermaid
from policy_engine.script import load_script


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m policy_engine.diagram",
        description="Print the LangGraph state machine compiled from the clinic script as Mermaid.",
    )
    parser.add_argument("--script-dir", type=Path, default=Path("prompts/clinic"))
    args = parser.parse_args(argv)
    try:
        script = load_script(args.script_dir)
    except ConfigError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    sys.stdout.write(mermaid(script))
    return 0


if __name__ == "__main__":
    sys.exit(main())
