"""Streaming speech recognition gateway: VAD, endpointing, partial and final transcripts."""
