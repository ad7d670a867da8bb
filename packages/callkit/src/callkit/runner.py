"""Running a service: --help that lists its environment, settings built once, uvicorn on uvloop."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

import uvicorn
from fastapi import FastAPI
from pydantic.fields import FieldInfo

from callkit.errors import AgentError, ConfigError
from callkit.logging import configure_logging
from callkit.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)
log = logging.getLogger("callkit.runner")


def settings_help(settings_cls: type[ServiceSettings]) -> str:
    """One line per environment variable: name, default and description."""
    lines = ["environment variables:"]
    for name, info in settings_cls.model_fields.items():
        lines.append(f"  {settings_cls.env_name(name):<28} {_default(info)}")
        if info.description:
            lines.append(f"      {info.description}")
    return "\n".join(lines)


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "(required)"
    default = info.get_default(call_default_factory=True)
    if hasattr(default, "get_secret_value"):
        return "(secret)"
    return f"(default: {default!r})"


def event_loop_name() -> str:
    """uvloop where it is installed (Linux, macOS); the standard loop elsewhere."""
    return "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"


def service_main(
    settings_cls: type[S],
    create_app: Callable[[S], FastAPI],
    *,
    prog: str,
    description: str,
    argv: Sequence[str] | None = None,
) -> int:
    """Entry point of ``python -m <service>``: parse flags, load settings, serve until stopped."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=settings_help(settings_cls),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", help="interface to bind (overrides the environment)")
    parser.add_argument("--port", type=int, help="port to listen on (overrides the environment)")
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the effective configuration (secrets masked) and exit",
    )
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    try:
        settings = settings_cls.load(**overrides)
    except ConfigError as exc:
        print(f"{prog}: {exc.message}", file=sys.stderr)
        return 2
    if args.print_config:
        for key, value in settings.model_dump(mode="json").items():
            shown = "***" if hasattr(getattr(settings, key), "get_secret_value") else value
            print(f"{settings_cls.env_name(key)}={shown}")
        return 0
    configure_logging(settings.log_level, settings.log_format, service=settings_cls.service_name)
    try:
        app = create_app(settings)
    except AgentError as exc:  # e.g. a model name the registry does not know
        print(f"{prog}: {exc.message}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop=event_loop_name(),
        log_config=None,
        access_log=False,
        ws_max_size=4 * 1024 * 1024,
        timeout_graceful_shutdown=10,
    )
    log.info(
        "service starting",
        extra={"host": settings.host, "port": settings.port, "loop": config.loop},
    )
    server = uvicorn.Server(config)
    server.run()  # handles SIGINT/SIGTERM: stops accepting, drains, runs the lifespan shutdown
    return 0
