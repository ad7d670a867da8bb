"""Speech synthesis gateway: Piper voices, sentence streaming, call-rate audio, cache and prerender."""
