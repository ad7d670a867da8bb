"""`python -m tts_gateway`: run the TTS gateway."""

import sys

import tts_gateway
from callkit.runner import service_main
from tts_gateway.app import create_app
from tts_gateway.settings import TtsSettings

if __name__ == "__main__":
    sys.exit(
        service_main(
            TtsSettings,
            create_app,
            prog="python -m tts_gateway",
            description=tts_gateway.__doc__ or "",
        )
    )
