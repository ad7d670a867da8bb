"""Two-level audio cache: Redis for hot entries (with a TTL), files for persistence (size-bounded).

Entries are whole utterances of mono L16 at one rate, stored only once synthesis completed, so
a cancelled request never leaves a partial entry behind. The key covers everything that changes
the audio: voice, model version, normalized text, sample rate and speed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from callkit.contracts import streams

log = logging.getLogger("tts_gateway.cache")


def cache_key(voice: str, model_version: str, text: str, sample_rate: int, speed: float) -> str:
    material = f"{voice}\x1f{model_version}\x1f{sample_rate}\x1f{speed:.3f}\x1f{text}"
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:40]


@dataclass(frozen=True, slots=True)
class CacheHit:
    pcm: bytes
    level: str  # "redis" or "file"


class FileCache:
    """PCM files under ``root/ab/abcdef….pcm``; least recently used files go first when over budget."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        root.mkdir(parents=True, exist_ok=True)
        self._total = sum(p.stat().st_size for p in root.glob("*/*.pcm"))

    @property
    def total_bytes(self) -> int:
        return self._total

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.pcm"

    def get(self, key: str) -> bytes | None:
        path = self.path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        os.utime(path)  # mark as recently used
        return data

    def put(self, key: str, pcm: bytes) -> None:
        if len(pcm) > self.max_bytes:
            return
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(pcm)
        with self._lock:
            old = path.stat().st_size if path.exists() else 0
            tmp.replace(path)  # atomic: readers see the old file or the whole new one
            self._total += len(pcm) - old
            if self._total > self.max_bytes:
                self._evict()

    def _evict(self) -> None:
        files = sorted(self.root.glob("*/*.pcm"), key=lambda p: p.stat().st_mtime)
        target = int(self.max_bytes * 0.9)  # evict a margin so every write does not evict again
        for path in files:
            if self._total <= target:
                break
            try:
                size = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                continue
            self._total -= size


class AudioCache:
    def __init__(
        self,
        redis: aioredis.Redis,
        files: FileCache,
        *,
        ttl_s: int,
        max_redis_entry_bytes: int,
        namespace: str = streams.TTS_PREFIX,
    ) -> None:
        self.redis = redis
        self.namespace = namespace
        self.files = files
        self.ttl_s = ttl_s
        self.max_redis_entry_bytes = max_redis_entry_bytes

    def redis_key(self, key: str) -> str:
        return streams.key(self.namespace, key)

    async def get(self, key: str) -> CacheHit | None:
        data: bytes | str | None
        try:
            data = await self.redis.get(self.redis_key(key))
        except (RedisError, OSError) as exc:
            log.warning(
                "redis cache unavailable; using files only", extra={"error": type(exc).__name__}
            )
            data = None
        if data is not None:
            return CacheHit(data if isinstance(data, bytes) else data.encode("latin-1"), "redis")
        pcm = await asyncio.to_thread(self.files.get, key)
        if pcm is None:
            return None
        await self._put_redis(key, pcm)  # promote a file hit back to the hot level
        return CacheHit(pcm, "file")

    async def put(self, key: str, pcm: bytes) -> None:
        await asyncio.to_thread(self.files.put, key, pcm)
        await self._put_redis(key, pcm)

    async def contains(self, key: str) -> bool:
        if await asyncio.to_thread(self.files.path(key).exists):
            return True
        try:
            return bool(await self.redis.exists(self.redis_key(key)))
        except (RedisError, OSError):
            return False

    async def _put_redis(self, key: str, pcm: bytes) -> None:
        if self.ttl_s <= 0 or len(pcm) > self.max_redis_entry_bytes:
            return
        try:
            await self.redis.set(self.redis_key(key), pcm, ex=self.ttl_s)
        except (RedisError, OSError) as exc:
            log.warning("redis cache write failed", extra={"error": type(exc).__name__})
