"""`python -m fs_bridge`: run the FreeSWITCH bridge."""

import sys

import fs_bridge
from callkit.runner import service_main
from fs_bridge.app import create_app
from fs_bridge.settings import BridgeSettings

if __name__ == "__main__":
    sys.exit(
        service_main(
            BridgeSettings,
            create_app,
            prog="python -m fs_bridge",
            description=fs_bridge.__doc__ or "",
        )
    )
