"""Recognition engines behind one interface (faster-whisper now)."""

from asr_gateway.engines.base import AsrEngine, BatchingEngine, Segment, Transcription
from asr_gateway.engines.whisper import FasterWhisperEngine

__all__ = ["AsrEngine", "BatchingEngine", "FasterWhisperEngine", "Segment", "Transcription"]
