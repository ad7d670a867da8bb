"""Composition root of the embedded LLM server: llama.cpp's OpenAI-compatible API plus ops routes.

The model is a registry entry (engine llama.cpp); its GGUF file is verified before loading.
Production runs vLLM instead (see services/llm/README.md); clients cannot tell the two apart
except by the structured-output form each enforces.
"""

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from callkit.errors import ConfigError, ModelError
from callkit.http import install_ops
from callkit.models import ModelStore, Registry
from llm.settings import LlmSettings

log = logging.getLogger("llm")

#: Builds the OpenAI-compatible app serving the configured model (blocking: it loads the model).
ModelServer = Callable[[LlmSettings, ModelStore], FastAPI]


def gguf_path(settings: LlmSettings, store: ModelStore | None = None) -> Path:
    """The verified GGUF file of the configured model."""
    models = store or ModelStore(Registry.load())
    entry = models.registry.get(settings.model)
    if entry.engine != "llama.cpp":
        raise ConfigError(
            f"LLM_MODEL={settings.model!r} is a {entry.engine} model; the embedded server runs llama.cpp models"
        )
    directory = models.resolve(settings.model)
    files = sorted(directory.glob("*.gguf"))
    if not files:
        raise ModelError(f"{settings.model}: no .gguf file in {directory}")
    return files[0]


def serve_llama_cpp(settings: LlmSettings, models: ModelStore) -> FastAPI:
    """llama.cpp's server app on the verified GGUF file, its KV cache primed (``warm_up``)."""
    from llama_cpp.server.app import create_app as create_llama_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    model_file = gguf_path(settings, models)
    app: FastAPI = create_llama_app(
        # interrupt_requests would let each new request cut off the stream in progress, i.e.
        # one call's reply would end when another call asks something; queue them instead.
        server_settings=ServerSettings(
            host=settings.host, port=settings.port, interrupt_requests=False
        ),
        model_settings=[
            ModelSettings(
                model=str(model_file),
                model_alias=settings.served_model_name,
                n_ctx=settings.context_tokens,
                n_threads=settings.threads,
                n_threads_batch=settings.threads,
                verbose=False,
            )
        ],
    )
    warm_up(settings)
    return app


def create_app(
    settings: LlmSettings,
    *,
    store: ModelStore | None = None,
    serve: ModelServer = serve_llama_cpp,
) -> FastAPI:
    app = serve(settings, store or ModelStore(Registry.load()))
    install_ops(app, settings.service_name)
    app.state.settings = settings
    return app


def warm_up(settings: LlmSettings) -> float | None:
    """Run the system prompt through the model once so its KV cache is in place.

    llama.cpp keeps the previous prompt's KV cache and reuses the longest common token prefix,
    so every call whose messages start with this system prompt skips its prefill. The request
    shape matches what clients send (system message first, then the turn).
    """
    path = settings.system_prompt_file
    if path is None:
        return None
    if not path.is_file():
        log.warning("warm-up skipped: system prompt file not found", extra={"path": str(path)})
        return None
    from llama_cpp.server import app as llama_server

    proxy: Any = llama_server._llama_proxy
    started = time.perf_counter()
    proxy(None).create_chat_completion(
        messages=[
            {"role": "system", "content": path.read_text(encoding="utf-8").strip()},
            {"role": "user", "content": "Hello."},
        ],
        max_tokens=1,
        temperature=0.0,
    )
    seconds = time.perf_counter() - started
    log.info("warm-up done", extra={"seconds": round(seconds, 3), "path": str(path)})
    return seconds
