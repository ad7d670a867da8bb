"""Composition root of the embedded LLM server: llama.cpp's OpenAI-compatible API plus ops routes.

The model is a registry entry (engine llama.cpp); its GGUF file is verified before loading.
Production runs vLLM instead (see services/llm/README.md); clients cannot tell the two apart
except by the structured-output form each enforces.
"""

from pathlib import Path

from fastapi import FastAPI

from callkit.errors import ConfigError, ModelError
from callkit.http import install_ops
from callkit.models import ModelStore, Registry
from llm.settings import LlmSettings


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


def create_app(settings: LlmSettings) -> FastAPI:
    from llama_cpp.server.app import create_app as create_llama_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    model_file = gguf_path(settings)
    app: FastAPI = create_llama_app(
        server_settings=ServerSettings(host=settings.host, port=settings.port),
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
    install_ops(app, settings.service_name)
    app.state.settings = settings
    return app
