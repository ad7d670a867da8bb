"""`python -m llm`: run the LLM service."""

import sys

import llm
from callkit.runner import service_main
from llm.app import create_app
from llm.settings import LlmSettings

if __name__ == "__main__":
    sys.exit(
        service_main(
            LlmSettings,
            create_app,
            prog="python -m llm",
            description=llm.__doc__ or "",
        )
    )
