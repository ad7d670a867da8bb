"""compose.yaml: the Compose specification's JSON schema, then what the schema cannot know.

The schema is the one check-jsonschema vendors from compose-spec/compose-spec. Beyond it:
every ``${VAR}`` is documented in .env.example (and nothing there is unused); every variable a
Python service is given is one its settings read, and every setting it requires is given; the
FreeSWITCH container gets only variables its entrypoint reads; both ends of each shared secret
come from the same variable; every long-running service has a healthcheck (a Python service's
probing the port it listens on), a restart policy and a memory limit; a Python service's image
is services/Dockerfile with SERVICE naming a folder of services/; ``depends_on:
service_healthy`` only names services with a healthcheck; only FreeSWITCH publishes ports to the
world (monitoring binds to 127.0.0.1).
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from callkit.settings import ServiceSettings

_VAR = re.compile(
    r"\$(?:\$|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}|"
    r"(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
#: Read by the image or a library rather than by a service's settings class.
IMAGE_VARIABLES = {"MODEL_CACHE_DIR", "HF_TOKEN", "HF_HOME"}
#: Read by docker compose itself.
COMPOSE_VARIABLES = {"COMPOSE_PROFILES", "COMPOSE_PROJECT_NAME"}
#: Bind-mounted folders the operator provides (docs/deployment.md), not the repository.
USER_PROVIDED = {"./credentials"}
#: Services whose published ports may face the world: SIP and RTP.
PUBLIC_SERVICES = {"freeswitch"}


class InterpolationError(ValueError):
    pass


def variables_in(text: str) -> set[str]:
    """Names of the variables a compose file interpolates."""
    return {m.group("braced") or m.group("bare") for m in _VAR.finditer(text) if m.group(0) != "$$"}


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's interpolation of every string in ``value`` (``:-``, ``-``, ``:?``, ``?``, ``:+``, ``+``)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group("braced") or m.group("bare")
        op, arg = m.group("op") or "", m.group("arg") or ""
        present = name in env
        val = env.get(name, "")
        empty_is_unset = op.startswith(":")
        unset = not present or (empty_is_unset and val == "")
        if op.endswith("-"):
            return arg if unset else val
        if op.endswith("?"):
            if unset:
                raise InterpolationError(f"{name}: {arg or 'required variable is missing'}")
            return val
        if op.endswith("+"):
            return "" if unset else arg
        return val

    return _VAR.sub(one, value)


def env_example(path: Path) -> tuple[dict[str, str], list[str]]:
    """Variables of .env.example and findings about its form (each needs a comment above it)."""
    found: dict[str, str] = {}
    problems: list[str] = []
    commented = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            commented = False
            continue
        if stripped.startswith("#"):
            commented = True
            continue
        name, eq, value = stripped.partition("=")
        if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            problems.append(f".env.example:{number}: not a NAME=value line: {stripped!r}")
            continue
        if not commented:
            problems.append(f".env.example:{number}: {name} has no comment saying what it is")
        found[name] = value
    return found, problems


def compose_schema() -> dict[str, Any]:
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    loaded: dict[str, Any] = json.loads(schema_file.read_text(encoding="utf-8"))
    return loaded


def settings_class(package: str) -> type[ServiceSettings] | None:
    module = importlib.import_module(f"{package}.settings")
    for obj in vars(module).values():
        if (
            inspect.isclass(obj)
            and issubclass(obj, ServiceSettings)
            and obj is not ServiceSettings
            and obj.__module__ == module.__name__
        ):
            return obj
    return None


def setting_names(cls: type[ServiceSettings]) -> dict[str, bool]:
    """Environment variable → whether the service refuses to start without it."""
    return {cls.env_name(f): info.is_required() for f, info in cls.model_fields.items()}


def entrypoint_variables(script: Path) -> tuple[set[str], set[str]]:
    """Variables FreeSWITCH's entrypoint reads, and those it requires."""
    text = script.read_text(encoding="utf-8")
    read = set(re.findall(r"^emit \S+ ([A-Z_][A-Z0-9_]*)", text, re.MULTILINE))
    read |= set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*):-", text))
    required = set(re.findall(r"^emit \S+ ([A-Z_][A-Z0-9_]*) required", text, re.MULTILINE))
    return read, required


def _service_package(service: Mapping[str, Any]) -> str | None:
    """The Python service an image runs: services/Dockerfile's SERVICE build argument."""
    build = service.get("build")
    if isinstance(build, dict) and str(build.get("dockerfile", "")) == "services/Dockerfile":
        args = build.get("args") or {}
        if isinstance(args, list):
            args = dict(str(item).partition("=")[::2] for item in args)
        package = str(args.get("SERVICE", ""))
        return package if re.fullmatch(r"[a-z_]+", package) else None
    return None


def _sample_env(example: Mapping[str, str]) -> dict[str, str]:
    env = dict(example)
    for name, value in env.items():
        if value == "" and ("PASSWORD" in name or "TOKEN" in name):
            env[name] = f"sample-{name.lower().replace('_', '-')}"
    return env


def check_compose(root: Path) -> list[str]:
    compose_file, example_file = root / "compose.yaml", root / ".env.example"
    text = compose_file.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [f"compose.yaml: not valid YAML: {exc}"]
    if not isinstance(raw, dict) or not isinstance(raw.get("services"), dict):
        return ["compose.yaml: has no services mapping"]
    if not example_file.is_file():
        return [".env.example: missing (it must list every variable compose.yaml reads)"]
    example, problems = env_example(example_file)

    used = variables_in(text)
    for name in sorted(used - set(example)):
        problems.append(f"compose.yaml: ${{{name}}} is not listed in .env.example")
    for name in sorted(set(example) - used - COMPOSE_VARIABLES):
        problems.append(f".env.example: {name} is not used by compose.yaml")

    try:
        model = interpolate(raw, _sample_env(example))
    except InterpolationError as exc:
        return [*problems, f"compose.yaml: with .env.example's values: {exc}"]
    try:
        interpolate(raw, {})
    except InterpolationError:
        pass  # good: compose refuses to start until the secrets are set
    else:
        problems.append("compose.yaml: starts without any secret set (use ${VAR:?message})")

    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    for error in sorted(validator.iter_errors(model), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in error.absolute_path) or "(top)"
        problems.append(f"compose.yaml: {where}: {error.message} (Compose specification)")

    problems += list(_cross_checks(root, model, raw))
    from deploycheck import settings_doc  # imports this module

    problems += settings_doc.check(root)
    return list(dict.fromkeys(problems))  # a service built twice (cpu and gpu) reports once


def _cross_checks(root: Path, model: dict[str, Any], raw: dict[str, Any]) -> Iterator[str]:
    services: dict[str, Any] = model["services"]
    for name, svc in services.items():
        where = f"compose.yaml: services.{name}"
        if not isinstance(svc, dict):
            continue
        if "healthcheck" not in svc:
            yield f"{where}: has no healthcheck"
        if svc.get("restart") not in ("always", "unless-stopped", "on-failure"):
            yield f"{where}: has no restart policy"
        limits = ((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        if "memory" not in limits:
            yield f"{where}: has no memory limit (deploy.resources.limits.memory)"
        deps = svc.get("depends_on") or {}
        if isinstance(deps, dict):
            for dep, cond in deps.items():
                if dep not in services:
                    yield f"{where}: depends on {dep!r}, which is not a service"
                elif (
                    isinstance(cond, dict)
                    and cond.get("condition") == "service_healthy"
                    and "healthcheck" not in services[dep]
                ):
                    yield f"{where}: waits for {dep!r} to be healthy, but {dep} has no healthcheck"
        for port in svc.get("ports") or []:
            spec = port if isinstance(port, str) else str(port.get("host_ip", ""))
            if name not in PUBLIC_SERVICES and not str(spec).startswith("127.0.0.1:"):
                yield f"{where}: publishes {spec!r} to every interface; bind it to 127.0.0.1"
        for volume in svc.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else ""
            in_repo = source.startswith("./") and source not in USER_PROVIDED
            if in_repo and not (root / source).exists():
                yield f"{where}: mounts {source}, which is not in the repository"
        build = svc.get("build")
        if isinstance(build, dict):
            context = root / str(build.get("context", "."))
            dockerfile = context / str(build.get("dockerfile", "Dockerfile"))
            if not dockerfile.is_file():
                yield f"{where}: build file {dockerfile.relative_to(root)} does not exist"
        yield from _environment_checks(root, name, svc)

    bridge = (raw["services"].get("fs-bridge") or {}).get("environment") or {}
    switch = (raw["services"].get("freeswitch") or {}).get("environment") or {}
    for bridge_key, switch_key in (
        ("BRIDGE_ESL_PASSWORD", "ESL_PASSWORD"),
        ("BRIDGE_FORK_PASSWORD", "FORK_PASSWORD"),
        ("BRIDGE_FORK_USER", "FORK_USER"),
    ):
        a, b = (
            variables_in(str(bridge.get(bridge_key, ""))),
            variables_in(str(switch.get(switch_key, ""))),
        )
        if not a or a != b:
            yield (
                f"compose.yaml: fs-bridge {bridge_key} and freeswitch {switch_key} must come "
                "from the same variable"
            )
    fork_url = str(((services.get("freeswitch") or {}).get("environment") or {}).get("FORK_URL"))
    bridge_port = str(
        ((services.get("fs-bridge") or {}).get("environment") or {}).get("BRIDGE_PORT", "8080")
    )
    if not re.fullmatch(rf"wss?://fs-bridge:{bridge_port}/fork", fork_url):
        yield (
            f"compose.yaml: freeswitch FORK_URL is {fork_url!r}; the bridge listens at "
            f"ws://fs-bridge:{bridge_port}/fork"
        )


def _environment_checks(root: Path, name: str, svc: Mapping[str, Any]) -> Iterator[str]:
    where = f"compose.yaml: services.{name}.environment"
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    package = _service_package(svc)
    if package is not None:
        if not (root / "services" / package / "pyproject.toml").is_file():
            yield f"compose.yaml: services.{name}.build: SERVICE={package} is not a folder of services/"
            return
        cls = settings_class(package)
        if cls is None:
            yield f"{where}: {package}.settings defines no settings class"
            return
        known = setting_names(cls)
        port = str(env.get(cls.env_name("port")) or cls.model_fields["port"].default)
        probe = " ".join(str(t) for t in _as_list((svc.get("healthcheck") or {}).get("test")))
        probed = re.findall(r"127\.0\.0\.1:(\d+)/", probe)
        if probed and probed != [port]:
            yield (
                f"compose.yaml: services.{name}.healthcheck: probes port {probed[0]}, but "
                f"{package} listens on {port}"
            )
        for key in sorted(env):
            if key not in known and key not in IMAGE_VARIABLES:
                yield f"{where}: {key} is not a setting of {package} (a typo?)"
        for key, required in sorted(known.items()):
            if required and not env.get(key):
                yield f"{where}: {package} cannot start without {key}"
        documented = (
            (root / "compose.yaml").read_text(encoding="utf-8")
            + (root / ".env.example").read_text(encoding="utf-8")
            + _read(root / "services" / package / "README.md")
        )
        for key in sorted(known):
            if key not in documented:
                yield (
                    f"services/{package}/README.md: {key} is read by {package} but documented "
                    "nowhere (the README, compose.yaml or .env.example)"
                )
    elif name == "freeswitch":
        read, needed = entrypoint_variables(root / "freeswitch" / "docker-entrypoint.sh")
        for key in sorted(env):
            if key not in read:
                yield f"{where}: freeswitch/docker-entrypoint.sh does not read {key}"
        for key in sorted(needed):
            if not env.get(key):
                yield f"{where}: FreeSWITCH's entrypoint refuses to start without {key}"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value else []


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.is_file() else ""
