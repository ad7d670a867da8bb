"""Caller voices: `espeak:<voice>` (Debian's espeak-ng), `piper:<voice>` (a Piper model from the
registry), `wav:<path>` (a recording). Every voice gives 16 kHz mono L16."""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
import wave
from pathlib import Path
from typing import Protocol

import numpy as np

from callkit.audio import read_wav, resample
from callkit.errors import ConfigError, InvalidInput

RATE = 16000


class Voice(Protocol):
    name: str

    def speak(self, text: str) -> bytes:
        """``text`` spoken, 16 kHz mono L16."""
        ...


def _normalized(pcm: np.ndarray, peak: float = 0.7) -> bytes:
    x = pcm.astype(np.float32)
    top = float(np.max(np.abs(x))) if x.size else 0.0
    if top > 0:
        x *= peak * 32767 / top
    return np.clip(x, -32768, 32767).astype("<i2").tobytes()


class EspeakVoice:
    def __init__(self, voice: str, speed: float = 1.0) -> None:
        self.binary = shutil.which("espeak-ng")
        if self.binary is None:
            raise ConfigError(
                "espeak-ng is not installed (Debian: apt-get install espeak-ng; `make setup` "
                "installs it when run as root); use a piper: or wav: voice instead"
            )
        self.voice = voice
        self.rate = round(165 * speed)  # espeak-ng's words a minute
        self.name = f"espeak:{voice}"

    @functools.lru_cache(maxsize=256)  # noqa: B019 (voices live as long as the process)
    def speak(self, text: str) -> bytes:
        done = subprocess.run(
            [str(self.binary), "-v", self.voice, "-s", str(self.rate), "--stdout", text],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0 or not done.stdout.startswith(b"RIFF"):
            raise InvalidInput(
                f"espeak-ng could not speak with voice {self.voice!r}: "
                f"{done.stderr.decode(errors='replace').strip()[:200]}"
            )
        with wave.open(io.BytesIO(done.stdout)) as w:
            rate = w.getframerate()
        # espeak-ng writes an unknown length into the header when it streams to stdout.
        raw = done.stdout[44:]
        pcm = resample(raw[: len(raw) - len(raw) % 2], rate, RATE)
        return _normalized(np.frombuffer(pcm, "<i2"))


class PiperCallerVoice:
    def __init__(self, voice: str, speed: float = 1.0) -> None:
        from callkit.models import ModelStore, Registry

        name = f"piper-{voice}"
        store = ModelStore(Registry.load())
        try:
            directory = store.resolve(name)
        except Exception as exc:
            raise ConfigError(f"piper voice {voice!r}: {exc}") from None
        onnx = sorted(directory.glob("*.onnx"))
        if not onnx:
            raise ConfigError(f"piper voice {voice!r}: no .onnx model in {directory}")
        from piper import PiperVoice, SynthesisConfig

        self._voice = PiperVoice.load(onnx[0])
        self._config = SynthesisConfig(length_scale=1.0 / speed)
        self._rate = int(self._voice.config.sample_rate)
        self.name = f"piper:{voice}"

    @functools.lru_cache(maxsize=256)  # noqa: B019
    def speak(self, text: str) -> bytes:
        chunks = [c.audio_int16_bytes for c in self._voice.synthesize(text, self._config)]
        pcm = resample(b"".join(chunks), self._rate, RATE)
        return _normalized(np.frombuffer(pcm, "<i2"))


class WavVoice:
    def __init__(self, path: str) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"wav voice: {self.path} does not exist")
        self.name = f"wav:{path}"

    def speak(self, text: str) -> bytes:
        """The recording itself, whatever the text (the text is what it is meant to say)."""
        frame = read_wav(self.path)
        pcm = frame.data
        if frame.channels == 2:
            pcm = np.frombuffer(pcm, "<i2")[::2].astype("<i2").tobytes()
        return resample(pcm, frame.sample_rate, RATE)


@functools.lru_cache(maxsize=16)
def voice_for(spec: str, speed: float = 1.0) -> Voice:
    """A voice from its spec: `espeak:en-us`, `piper:en_US-joe-medium`, `wav:path/to.wav`;
    ``speed`` against the voice's usual rate (a recording is played as it is)."""
    kind, _, arg = spec.partition(":")
    if not arg:
        raise ConfigError(f"voice {spec!r}: expected espeak:<voice>, piper:<voice> or wav:<path>")
    if kind == "espeak":
        return EspeakVoice(arg, speed)
    if kind == "piper":
        return PiperCallerVoice(arg, speed)
    if kind == "wav":
        return WavVoice(arg)
    raise ConfigError(f"voice {spec!r}: unknown kind {kind!r}; use espeak, piper or wav")
