"""`python -m notifier`: run the notifier."""

import sys

import notifier
from callkit.runner import service_main
from notifier.app import create_app
from notifier.settings import NotifySettings

if __name__ == "__main__":
    sys.exit(
        service_main(
            NotifySettings,
            create_app,
            prog="python -m notifier",
            description=notifier.__doc__ or "",
        )
    )
