"""`python -m llm.probe`: is an OpenAI-compatible LLM server ready to take calls?

Checks that the server lists the served model and produces a token, and primes its prefix
cache with the dialog's system prompt on the way. Works against vLLM and the embedded server;
usable as a container healthcheck or a deployment smoke test. Exit status 0 when ready.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from callkit.errors import AgentError
from callkit.llm_client import LlmClient


async def probe(base_url: str, model: str, system_prompt: str, timeout_s: float) -> str:
    async with LlmClient(base_url, model, total_timeout_s=timeout_s, retries=0) as client:
        served = await client.served_models()
        backend = await client.backend()
        if model not in served:
            raise AgentError(
                f"model {model!r} is not served here; the server has: {', '.join(served)}"
            )
        seconds = await client.warm_up(system_prompt)
        return f"ready: {backend} serving {model}; warm-up {seconds * 1000:.0f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m llm.probe",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--base-url", default="http://127.0.0.1:8000/v1", help="OpenAI-compatible base URL"
    )
    parser.add_argument("--model", default="clinic-agent", help="served model name")
    parser.add_argument(
        "--system-prompt",
        type=Path,
        default=Path("prompts/system.en.txt"),
        help="system prompt to prime the prefix cache with",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before giving up")
    args = parser.parse_args(argv)
    prompt = (
        args.system_prompt.read_text(encoding="utf-8").strip()
        if args.system_prompt.is_file()
        else ""
    )
    try:
        print(
            asyncio.run(
                probe(
                    args.base_url,
                    args.model,
                    prompt or "You are a helpful assistant.",
                    args.timeout,
                )
            )
        )
    except AgentError as exc:
        print(f"not ready: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
