"""HTTP edges of the TTS gateway."""
