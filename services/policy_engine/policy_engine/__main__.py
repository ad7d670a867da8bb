"""`python -m policy_engine`: run the policy engine."""

import sys

import policy_engine
from callkit.runner import service_main
from policy_engine.app import create_app
from policy_engine.settings import PolicySettings

if __name__ == "__main__":
    sys.exit(
        service_main(
            PolicySettings,
            create_app,
            prog="python -m policy_engine",
            description=policy_engine.__doc__ or "",
        )
    )
