"""Every package's pyproject.toml declares the distributions its modules import, and only those."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(
    p.parent for p in ROOT.glob("*/*/pyproject.toml") if p.parts[-3] in ("packages", "services")
)


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, f"not a requirement: {requirement!r}"
    return normalize(match.group(1))


def import_roots(package_dir: Path) -> list[Path]:
    """The top-level import packages a project directory ships (src layout or flat; callkit is a
    namespace package without __init__.py)."""
    base = package_dir / "src" if (package_dir / "src").is_dir() else package_dir
    return sorted(d for d in base.iterdir() if d.name.isidentifier() and any(d.glob("*.py")))


def local_distributions(package_dirs: list[Path]) -> dict[str, str]:
    """Import name -> distribution name for the packages of this repository."""
    names: dict[str, str] = {}
    for package_dir in package_dirs:
        project = tomllib.loads((package_dir / "pyproject.toml").read_text())["project"]
        for root in import_roots(package_dir):
            names[root.name] = normalize(project["name"])
    return names


@cache
def distributions_of_top_level() -> dict[str, list[str]]:
    return dict(metadata.packages_distributions())


@cache
def installed_files(distribution: str) -> tuple[str, ...]:
    return tuple(str(f) for f in metadata.distribution(distribution).files or ())


def providers(module: str, local: dict[str, str]) -> set[str]:
    """Distributions that provide `module`; a namespace package (google.*) is narrowed to the
    distributions that ship the imported subpackage."""
    top = module.partition(".")[0]
    if top in local:
        return {local[top]}
    candidates = {normalize(d) for d in distributions_of_top_level().get(top, [])}
    parts = module.split(".")
    if len(candidates) > 1:
        for depth in range(len(parts), 1, -1):
            prefix = "/".join(parts[:depth])
            shipping = {
                c
                for c in candidates
                if any(
                    f.startswith(prefix + "/") or f == prefix + ".py" for f in installed_files(c)
                )
            }
            if shipping:
                return shipping
    return candidates


def imported_modules(source: Path) -> set[str]:
    """Absolute imports of third-party or local modules (the standard library left out)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return {m for m in found if m.partition(".")[0] not in sys.stdlib_module_names | {"__future__"}}


def audit(package_dir: Path, local: dict[str, str]) -> list[str]:
    """What the package imports without declaring, and what it declares without importing."""
    pyproject = tomllib.loads((package_dir / "pyproject.toml").read_text())
    project = pyproject["project"]
    required = {requirement_name(r) for r in project.get("dependencies", [])}
    optional = {
        requirement_name(r) for rs in project.get("optional-dependencies", {}).values() for r in rs
    }
    without_import = {
        normalize(name)
        for name in pyproject.get("tool", {}).get("clinic-voice", {}).get("used-without-import", {})
    }
    own = {root.name for root in import_roots(package_dir)}
    problems: list[str] = []
    imported: set[str] = set()
    for root in import_roots(package_dir):
        for source in sorted(root.rglob("*.py")):
            where = source.relative_to(package_dir)
            for module in sorted(imported_modules(source)):
                if module.partition(".")[0] in own:
                    continue
                dists = providers(module, local)
                imported |= dists
                if not dists:
                    problems.append(
                        f"{where}: imports {module}, which no installed distribution provides"
                    )
                elif not dists & (required | optional):
                    problems.append(
                        f"{where}: imports {module} ({' or '.join(sorted(dists))}), "
                        "not declared in [project] dependencies"
                    )
    for name in sorted(required - imported - without_import):
        problems.append(
            f"pyproject.toml: declares {name}, which no module imports "
            "(remove it, or say why under [tool.clinic-voice.used-without-import])"
        )
    for name in sorted(without_import - required):
        problems.append(
            f"pyproject.toml: used-without-import names {name}, which is not a dependency"
        )
    return problems


@pytest.mark.parametrize("package_dir", PACKAGES, ids=[p.name for p in PACKAGES])
def test_each_package_declares_exactly_what_it_imports(package_dir: Path) -> None:
    assert audit(package_dir, local_distributions(PACKAGES)) == []


def test_every_distribution_name_carries_the_project_prefix() -> None:
    # Unprefixed names (llm, notifier, callkit) belong to other PyPI projects or would be
    # looked up on the index when one service is installed alone.
    names = sorted(local_distributions(PACKAGES).values())
    assert len(names) >= 9
    assert [n for n in names if not n.startswith("clinic-voice-")] == []


def make_package(tmp_path: Path, dependencies: list[str], code: str, extra_toml: str = "") -> Path:
    package_dir = tmp_path / f"demo{len(list(tmp_path.iterdir()))}"
    (package_dir / "src" / "demo").mkdir(parents=True)
    (package_dir / "src" / "demo" / "__init__.py").write_text('"""Demo."""\n')
    (package_dir / "src" / "demo" / "work.py").write_text(code)
    deps = ", ".join(f'"{d}"' for d in dependencies)
    (package_dir / "pyproject.toml").write_text(
        f'[project]\nname = "demo"\nversion = "0"\ndependencies = [{deps}]\n{extra_toml}'
    )
    return package_dir


LOCAL = {"callkit": "clinic-voice-callkit"}


def test_an_undeclared_third_party_import_is_reported(tmp_path: Path) -> None:
    package = make_package(tmp_path, [], "import json\nfrom demo import work\nimport yaml\n")
    assert audit(package, LOCAL) == [
        "src/demo/work.py: imports yaml (pyyaml), not declared in [project] dependencies"
    ]


def test_an_import_declared_under_its_distribution_name_passes(tmp_path: Path) -> None:
    code = "from yaml import safe_load\n\ndef f():\n    import callkit.errors\n"
    package = make_package(tmp_path, ["PyYAML>=6", "clinic-voice-callkit"], code)
    assert audit(package, LOCAL) == []


def test_a_local_package_under_its_old_name_is_reported(tmp_path: Path) -> None:
    package = make_package(tmp_path, ["callkit"], "import callkit\n")
    problems = audit(package, LOCAL)
    assert (
        "src/demo/work.py: imports callkit (clinic-voice-callkit), not declared in [project] dependencies"
        in problems
    )
    assert any("declares callkit, which no module imports" in p for p in problems)


def test_a_namespace_subpackage_needs_the_distribution_that_ships_it(tmp_path: Path) -> None:
    code = "from google.oauth2.service_account import Credentials\n"
    assert audit(make_package(tmp_path, ["protobuf"], code), LOCAL)[0].startswith(
        "src/demo/work.py: imports google.oauth2.service_account (google-auth)"
    )
    assert audit(make_package(tmp_path, ["google-auth"], code), LOCAL) == []


def test_a_module_no_distribution_provides_is_reported(tmp_path: Path) -> None:
    package = make_package(tmp_path, [], "import surely_not_installed_anywhere\n")
    assert audit(package, LOCAL) == [
        "src/demo/work.py: imports surely_not_installed_anywhere, which no installed distribution provides"
    ]


def test_a_declaration_nothing_imports_needs_a_stated_reason(tmp_path: Path) -> None:
    unused = make_package(tmp_path, ["websockets>=13"], "x = 1\n")
    assert audit(unused, LOCAL) == [
        "pyproject.toml: declares websockets, which no module imports "
        "(remove it, or say why under [tool.clinic-voice.used-without-import])"
    ]
    reason = (
        '[tool.clinic-voice.used-without-import]\nwebsockets = "uvicorn speaks WebSocket with it"\n'
    )
    assert audit(make_package(tmp_path, ["websockets>=13"], "x = 1\n", reason), LOCAL) == []
