"""`make test` refuses to pass when pytest collected nothing (what CI relies on)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def test_no_collected_tests_fails_loudly(repo_root: Path) -> None:
    done = subprocess.run(
        [
            "make",
            "-s",
            "test",
            "PYTEST_ARGS=tests/unit -k no_test_has_this_name_zz -p no:cacheprovider",
        ],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode != 0
    assert "pytest collected no tests" in done.stderr
