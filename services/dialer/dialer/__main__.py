"""`python -m dialer`: run the outbound campaign dialer (API and dialing loop)."""

import sys

import dialer
from callkit.runner import service_main
from dialer.app import create_app
from dialer.settings import DialerSettings

if __name__ == "__main__":
    sys.exit(
        service_main(
            DialerSettings,
            create_app,
            prog="python -m dialer",
            description=dialer.__doc__ or "",
        )
    )
