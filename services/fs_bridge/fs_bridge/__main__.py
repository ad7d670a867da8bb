"""`python -m fs_bridge`: run the FreeSWITCH bridge."""

import os
import sys

# The bridge's numpy work is small and per frame (echo canceller, levels): OpenBLAS's worker
# threads only spin-wait between calls, which cost 40% of a core per call on 2 cores. One
# thread, unless the operator says otherwise; set before numpy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

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
