"""uv.lock satisfies every pyproject.toml and requirements/lock/ is what it exports (offline)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).parent / "uv"


def workspace_copy(dest: Path) -> Path:
    """The files the lock depends on: the pyprojects, uv.lock, requirements/ and the script."""
    files = [ROOT / "pyproject.toml", ROOT / "uv.lock", ROOT / "scripts" / "lock.sh"]
    files += sorted(ROOT.glob("packages/*/pyproject.toml")) + sorted(
        ROOT.glob("services/*/pyproject.toml")
    )
    for source in files:
        target = dest / source.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    shutil.copytree(ROOT / "requirements", dest / "requirements")
    return dest


def check(workspace: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(workspace / "scripts" / "lock.sh"), "--check"],
        env={**os.environ, "UV": str(UV)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def uv() -> Path:
    assert UV.is_file(), f"{UV} is missing: make setup installs uv from requirements/lock/uv.txt"
    return UV


def test_the_lock_and_its_exports_are_current(uv: Path) -> None:
    result = check(ROOT)
    assert result.returncode == 0, result.stderr


def test_a_dependency_added_without_relocking_fails_the_check(uv: Path, tmp_path: Path) -> None:
    workspace = workspace_copy(tmp_path)
    assert check(workspace).returncode == 0
    pyproject = workspace / "services" / "notifier" / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(
        text.replace("dependencies = [\n", 'dependencies = [\n    "jinja2>=3",\n', 1)
    )
    result = check(workspace)
    assert result.returncode != 0
    # uv says the lock is stale, or, offline with a cache that lacks the new package for one of
    # the lock's Python splits, that it cannot resolve it: either way the check refuses.
    assert "needs to be updated" in result.stderr or "No solution found" in result.stderr


def test_an_export_edited_by_hand_fails_the_check(uv: Path, tmp_path: Path) -> None:
    workspace = workspace_copy(tmp_path)
    export = workspace / "requirements" / "lock" / "notifier.txt"
    export.write_text(export.read_text().replace("gspread==", "gspread>=", 1))
    result = check(workspace)
    assert result.returncode != 0
    assert "requirements/lock/ is out of date" in result.stderr
