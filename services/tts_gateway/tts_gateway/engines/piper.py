"""Piper voices (piper-tts) on onnxruntime, loaded from the model registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
from piper import PiperVoice
from piper.config import PiperConfig

from callkit.errors import ModelError
from callkit.models import ModelStore
from callkit.models.registry import HUB_LOCK
from tts_gateway.engines.base import CancelToken, Synthesis, SynthesisCancelled

PEAK = 0.95  # normalize each sentence to this peak, leaving headroom for the codec


def voice_files(model_dir: Path) -> list[Path]:
    """The .onnx voices in a model directory: at its top (packaged voices) or in the
    repository's own folders (a hub voice keeps rhasspy/piper-voices' ``ru/ru_RU/irina/medium``)."""
    return sorted(
        p
        for p in model_dir.rglob("*.onnx")
        if not any(part.startswith(".") for part in p.relative_to(model_dir).parts)
    )


def _locked_version(directory: Path, revision: str) -> str:
    """A hub voice's version: the start of its .onnx file's sha256, recorded on its first pull."""
    try:
        lock: dict[str, str] = json.loads((directory / HUB_LOCK).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return revision
    digest = next((h for path, h in sorted(lock.items()) if path.endswith(".onnx")), None)
    return digest[:12] if digest else revision


class PiperEngine:
    """One Piper voice. Thread-safe: onnxruntime sessions may run concurrently."""

    def __init__(
        self, name: str, model_dir: Path, *, language: str, threads: int, model_version: str
    ) -> None:
        onnx_files = voice_files(model_dir)
        if not onnx_files:
            raise ModelError(f"{name}: no .onnx voice in {model_dir}")
        model = onnx_files[0]
        config_path = model.with_name(model.name + ".json")
        if not config_path.is_file():
            raise ModelError(f"{name}: voice config {config_path.name} is missing")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
        self._voice = PiperVoice(session=session, config=config)
        self._session = session
        self.name = name
        self.language = language
        self.sample_rate = config.sample_rate
        self.model_version = model_version

    @classmethod
    def from_registry(cls, store: ModelStore, name: str, *, threads: int) -> PiperEngine:
        entry = store.registry.get(name)
        if entry.kind != "tts" or entry.engine != "piper":
            raise ModelError(f"{name} is a {entry.kind}/{entry.engine} model, not a Piper voice")
        directory = store.resolve(name)
        onnx = next((f for f in entry.files if f.path.endswith(".onnx")), None)
        version = (onnx.sha256 or "")[:12] if onnx else _locked_version(directory, entry.revision)
        return cls(
            name, directory, language=entry.languages[0], threads=threads, model_version=version
        )

    def synthesize(self, text: str, *, speed: float, cancel: CancelToken) -> Synthesis:
        cancel.raise_if_cancelled()
        config = self._voice.config
        scales = np.array(
            [config.noise_scale, config.length_scale / speed, config.noise_w_scale],
            dtype=np.float32,
        )
        pieces: list[np.ndarray] = []
        for phonemes in self._voice.phonemize(text):
            if not phonemes:
                continue
            ids = np.array([self._voice.phonemes_to_ids(phonemes)], dtype=np.int64)
            inputs = {
                "input": ids,
                "input_lengths": np.array([ids.shape[1]], dtype=np.int64),
                "scales": scales,
            }
            if config.num_speakers > 1:
                inputs["sid"] = np.array([config.default_speaker_id or 0], dtype=np.int64)
            run_options = ort.RunOptions()
            cancel.register(run_options)
            try:
                audio = self._session.run(None, inputs, run_options)[0].squeeze()
            except Exception as exc:  # onnxruntime raises a plain Fail when terminated
                if cancel.cancelled:
                    raise SynthesisCancelled from exc
                raise
            pieces.append(np.asarray(audio, dtype=np.float32).reshape(-1))
        if not pieces:
            return Synthesis(np.zeros(0, dtype=np.int16), self.sample_rate)
        audio = np.concatenate(pieces)
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        if peak > 1e-6:
            audio = audio * (PEAK / peak)
        return Synthesis(np.clip(audio * 32767.0, -32768, 32767).astype(np.int16), self.sample_rate)
