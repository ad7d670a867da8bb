#!/usr/bin/env bash
# A separate environment for RealtimeSTT (it pins websockets, scipy and needs torch), used only by
# `make bench-realtimestt` to measure it side by side with the ASR gateway.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-realtimestt
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import RealtimeSTT" 2>/dev/null; then
    echo "==> creating $VENV (torch CPU, RealtimeSTT 1.1.2, faster-whisper)" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q torch==2.13.0
    # Its pins conflict with nothing it needs here; microphone (PyAudio) and torchaudio are not used.
    "$VENV/bin/pip" install -q --no-deps RealtimeSTT==1.1.2
    "$VENV/bin/pip" install -q faster-whisper webrtcvad-wheels halo colorama scipy soundfile websocket-client numpy
fi
