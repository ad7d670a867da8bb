"""Text preparation for speech: sentence splitting and per-language normalization."""

from tts_gateway.text.normalize import Normalizer, normalizer_for
from tts_gateway.text.sentences import split_sentences

__all__ = ["Normalizer", "normalizer_for", "split_sentences"]
