"""WebSocket and HTTP edges of the ASR gateway."""
