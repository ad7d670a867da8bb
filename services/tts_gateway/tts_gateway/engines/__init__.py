"""Synthesis engines behind one interface (Piper now; Kokoro or others can be added)."""

from tts_gateway.engines.base import CancelToken, Synthesis, TtsEngine
from tts_gateway.engines.piper import PiperEngine

__all__ = ["CancelToken", "PiperEngine", "Synthesis", "TtsEngine"]
