"""The model registry: one manifest of every model, a cache that assembles and verifies them."""

from callkit.models.registry import (
    ModelEntry,
    ModelFile,
    ModelMissing,
    ModelStore,
    Registry,
    default_cache_dir,
)

__all__ = ["ModelEntry", "ModelFile", "ModelMissing", "ModelStore", "Registry", "default_cache_dir"]
