"""`python -m asr_gateway`: run the ASR gateway."""

import sys

import asr_gateway
from asr_gateway.app import create_app
from asr_gateway.settings import AsrSettings
from callkit.runner import service_main

if __name__ == "__main__":
    sys.exit(
        service_main(
            AsrSettings,
            create_app,
            prog="python -m asr_gateway",
            description=asr_gateway.__doc__ or "",
        )
    )
