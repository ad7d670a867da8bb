"""The model registry assembles packaged parts, verifies hashes and reports problems clearly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from callkit.errors import ModelError, NotFound
from callkit.models import ModelStore, Registry
from callkit.models.registry import sha256_file


@pytest.fixture
def fake_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real importable package on sys.path that carries a model split in two parts."""
    pkg = tmp_path / "site" / "tinymodel_parts"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "weights.part1").write_bytes(b"A" * 1000)
    (pkg / "data" / "weights.part2").write_bytes(b"B" * 500)
    (pkg / "data" / "config.json").write_text('{"dims": 4}')
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return pkg


def manifest_for(tmp_path: Path, weights_sha: str) -> Path:
    config_sha = __import__("hashlib").sha256(b'{"dims": 4}').hexdigest()
    path = tmp_path / "manifest.toml"
    path.write_text(f"""
[[model]]
name = "tiny"
kind = "asr"
engine = "test"
profile = "dev"
languages = ["en"]
licence = "MIT"
description = "a two-part test model"
source = "packaged"

[[model.files]]
path = "weights.bin"
parts = ["tinymodel_parts:data/weights.part1", "tinymodel_parts:data/weights.part2"]
size = 1500
sha256 = "{weights_sha}"

[[model.files]]
path = "config.json"
parts = ["tinymodel_parts:data/config.json"]
sha256 = "{config_sha}"
""")
    return path


GOOD_SHA = __import__("hashlib").sha256(b"A" * 1000 + b"B" * 500).hexdigest()


def test_parts_are_assembled_in_order_and_verified(tmp_path: Path, fake_package: Path) -> None:
    store = ModelStore(Registry.load(manifest_for(tmp_path, GOOD_SHA)), tmp_path / "cache")
    assert store.status("tiny") == "missing"
    messages: list[str] = []
    directory = store.resolve("tiny", messages.append)
    assert (directory / "weights.bin").read_bytes() == b"A" * 1000 + b"B" * 500
    assert store.status("tiny") == "ready"
    assert any("assembling tiny/weights.bin from 2 parts" in m for m in messages)


def test_a_wrong_hash_leaves_nothing_behind(tmp_path: Path, fake_package: Path) -> None:
    store = ModelStore(Registry.load(manifest_for(tmp_path, "0" * 64)), tmp_path / "cache")
    with pytest.raises(ModelError, match="sha256 mismatch after assembly"):
        store.pull("tiny")
    assert not list((tmp_path / "cache" / "tiny").glob("weights.bin*"))


def test_corruption_after_assembly_is_caught_by_full_verify(
    tmp_path: Path, fake_package: Path
) -> None:
    store = ModelStore(Registry.load(manifest_for(tmp_path, GOOD_SHA)), tmp_path / "cache")
    weights = store.resolve("tiny") / "weights.bin"
    stat = weights.stat()
    with weights.open("r+b") as f:  # flip one byte, keep size and mtime
        f.seek(700)
        f.write(b"Z")
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    store.verify("tiny")  # the quick check trusts the stamp...
    with pytest.raises(ModelError, match=r"weights\.bin: sha256 mismatch"):
        store.verify("tiny", full=True)  # ...the full one does not
    weights.write_bytes(b"short")
    assert store.status("tiny") == "corrupt"
    assert store.resolve("tiny")  # a packaged model repairs itself on resolve
    assert store.status("tiny") == "ready"


def test_missing_package_says_what_to_install(tmp_path: Path) -> None:
    store = ModelStore(Registry.load(manifest_for(tmp_path, GOOD_SHA)), tmp_path / "cache")
    with pytest.raises(ModelError, match="providing 'tinymodel_parts' is not installed"):
        store.pull("tiny")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[[model]]\nname = "x"\n', "model 'x'"),
        ("[[model\n", "not valid TOML"),
        (
            '[[model]]\nname="a"\nkind="asr"\nengine="e"\nprofile="dev"\nlanguages=[]\nlicence="l"\n'
            'description="d"\nsource="hub"\n',
            "a hub model names its repo",
        ),
        (
            '[[model]]\nname="a"\nkind="asr"\nengine="e"\nprofile="dev"\nlanguages=[]\nlicence="l"\n'
            'description="d"\nsource="packaged"\n[[model.files]]\npath="../../etc/passwd"\nparts=["m:x"]\n'
            'sha256="' + "0" * 64 + '"\n',
            "must stay inside the model directory",
        ),
    ],
)
def test_broken_manifests_are_refused_naming_the_entry(
    tmp_path: Path, body: str, message: str
) -> None:
    path = tmp_path / "m.toml"
    path.write_text(body)
    with pytest.raises(ModelError, match=message):
        Registry.load(path)


def test_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(NotFound, match=r"unknown model 'gpt-9'.*whisper-base"):
        Registry.load().get("gpt-9")


def test_every_dev_model_is_in_the_cache_and_matches_its_hash() -> None:
    """What `make setup` assembled is exactly what the manifest registers (full re-hash)."""
    store = ModelStore(Registry.load())
    for entry in store.registry.select(profile="dev"):
        directory = store.verify(entry.name, full=True)
        for f in entry.files:
            assert sha256_file(directory / f.path) == f.sha256


def test_production_models_are_registered_with_their_hub_sources() -> None:
    prod = {e.name: e for e in Registry.load().select(profile="prod")}
    assert prod["whisper-large-v3-turbo"].repo == "mobiuslabsgmbh/faster-whisper-large-v3-turbo"
    assert prod["qwen2.5-14b-instruct-awq"].repo == "Qwen/Qwen2.5-14B-Instruct-AWQ"
    assert {e.kind for e in prod.values()} == {"asr", "llm", "tts"}


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "callkit.models", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_cli_lists_models_with_their_status() -> None:
    done = run_cli("list", "--json")
    assert done.returncode == 0, done.stderr
    rows = {r["name"]: r for r in json.loads(done.stdout)}
    assert rows["whisper-base"]["status"] == "ready"
    assert rows["qwen2.5-14b-instruct-awq"]["status"] == "missing"


def test_cli_inspect_and_path() -> None:
    info = json.loads(run_cli("inspect", "piper-en_US-joe-medium").stdout)
    assert info["kind"] == "tts"
    assert info["status"] == "ready"
    path = Path(run_cli("path", "silero-vad").stdout.strip())
    assert (path / "silero_vad.onnx").is_file()


def test_cli_pull_of_a_hub_model_offline_fails_with_guidance(tmp_path: Path) -> None:
    done = run_cli(
        "--cache-dir", str(tmp_path), "pull", "whisper-large-v3-turbo", env={"HF_HUB_OFFLINE": "1"}
    )
    assert done.returncode == 1
    assert "could not download mobiuslabsgmbh/faster-whisper-large-v3-turbo" in done.stderr
    assert "agent-models verify whisper-large-v3-turbo" in done.stderr


def test_cli_unknown_model_is_an_error_not_a_traceback() -> None:
    done = run_cli("inspect", "nope")
    assert done.returncode == 1
    assert done.stderr.startswith("error: unknown model 'nope'")
    assert "Traceback" not in done.stderr


def test_hub_files_copied_by_hand_are_locked_on_first_verify(tmp_path: Path) -> None:
    """Air-gapped install: files copied into the cache are hashed once, then held to it."""
    store = ModelStore(Registry.load(), tmp_path)
    target = tmp_path / "whisper-large-v3-turbo"
    target.mkdir()
    (target / "model.bin").write_bytes(b"weights")
    (target / "config.json").write_text("{}")
    store.verify("whisper-large-v3-turbo")
    assert store.status("whisper-large-v3-turbo") == "ready"
    (target / "model.bin").write_bytes(b"tampered")
    assert store.status("whisper-large-v3-turbo") == "corrupt"
