"""Text in, a stream of call-rate L16 chunks out: normalize, split, synthesize, resample, cache.

The first sentence is synthesized first and streamed while the next one is synthesized. A cache
hit streams the stored audio at once. When the consumer goes away (the caller barged in), the
cancel token aborts the running inference, and nothing incomplete is cached.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from callkit.audio import StreamResampler
from callkit.errors import InvalidInput, PayloadTooLarge
from callkit.models import Registry
from tts_gateway.cache import AudioCache, CacheHit, cache_key
from tts_gateway.engines import CancelToken, Synthesis, TtsEngine
from tts_gateway.text import normalizer_for, split_sentences
from tts_gateway.text.normalize import clean, has_control_characters
from tts_gateway.voices import MissingVoice, VoiceBook


class TtsMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "tts_requests_total",
            "Synthesis requests by cache result and outcome.",
            ["cache", "outcome"],
            registry=registry,
        )
        self.first_byte = Histogram(
            "tts_first_byte_seconds",
            "Request start to the first audio byte, by cache result.",
            ["cache"],
            registry=registry,
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2),
        )
        self.rtf = Histogram(
            "tts_real_time_factor",
            "Synthesis time divided by audio duration.",
            registry=registry,
            buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0),
        )
        self.active = Gauge("tts_active_syntheses", "Syntheses running now.", registry=registry)
        self.cancel_latency = Histogram(
            "tts_cancel_seconds",
            "Cancel request to the synthesis thread letting go of the CPU.",
            registry=registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5),
        )
        # Counters, not a ratio: a share is only meaningful over a window and summed over
        # replicas, rate(hits) / (rate(hits) + rate(misses)).
        self.cache_hits = Counter(
            "tts_cache_hits_total", "Cache lookups that found the audio.", registry=registry
        )
        self.cache_misses = Counter(
            "tts_cache_misses_total", "Cache lookups that had to synthesize.", registry=registry
        )

    def count_lookup(self, hit: bool) -> None:
        (self.cache_hits if hit else self.cache_misses).inc()


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated request: which engine, the normalized text and its sentences, the cache key."""

    engine: TtsEngine
    text: str
    sentences: list[str]
    sample_rate: int
    speed: float
    key: str


class Synthesizer:
    def __init__(
        self,
        engines: Mapping[str, TtsEngine],
        default_voice: str,
        cache: AudioCache,
        metrics: TtsMetrics,
        executor: Executor,
        *,
        chunk_ms: int = 40,
        max_text_chars: int = 1000,
        missing: Mapping[str, MissingVoice] | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.voices = VoiceBook(engines, default_voice, missing=missing, registry=registry)
        self.engines = self.voices.engines
        self.default_voice = default_voice
        self.cache = cache
        self.metrics = metrics
        self.executor = executor
        self.chunk_ms = chunk_ms
        self.max_text_chars = max_text_chars

    # ------------------------------------------------------------------ validation

    def prepare(
        self,
        text: str,
        voice: str | None,
        sample_rate: int,
        speed: float = 1.0,
        language: str | None = None,
    ) -> Prepared:
        """Validate a request and pick its voice: ``voice`` by id, else the voice of
        ``language``, else of the text's script (Cyrillic is Russian), else the default."""
        if has_control_characters(text):
            raise InvalidInput("text contains control characters", code="invalid_text")
        text = clean(text)
        if not text:
            raise InvalidInput("text is empty", code="empty_text")
        if len(text) > self.max_text_chars:
            raise PayloadTooLarge(
                f"text is {len(text)} characters; the limit is {self.max_text_chars}"
            )
        engine = self.voices.choose(text, voice, language)
        name = engine.name
        normalized = normalizer_for(engine.language).normalize(text)
        sentences = split_sentences(normalized)
        if not sentences:
            raise InvalidInput("text has nothing to say once normalized", code="empty_text")
        key = cache_key(name, engine.model_version, normalized, sample_rate, speed)
        return Prepared(engine, normalized, sentences, sample_rate, speed, key)

    # ------------------------------------------------------------------ serving

    async def lookup(self, prepared: Prepared) -> CacheHit | None:
        hit = await self.cache.get(prepared.key)
        self.metrics.count_lookup(hit is not None)
        return hit

    def chunks_of(self, pcm: bytes, sample_rate: int) -> list[bytes]:
        size = max(2, sample_rate * self.chunk_ms // 1000 * 2)
        return [pcm[i : i + size] for i in range(0, len(pcm), size)]

    async def synthesize(self, prepared: Prepared) -> AsyncIterator[bytes]:
        """Stream a fresh synthesis; the whole utterance is cached only if it completes."""
        engine = prepared.engine
        loop = asyncio.get_running_loop()
        token = CancelToken()
        resampler = StreamResampler(engine.sample_rate, prepared.sample_rate)
        produced: list[bytes] = []
        synth_seconds = 0.0
        audio_seconds = 0.0

        def run(sentence: str) -> tuple[Synthesis, float]:
            t0 = time.perf_counter()
            result = engine.synthesize(sentence, speed=prepared.speed, cancel=token)
            return result, time.perf_counter() - t0

        pending: asyncio.Future[tuple[Synthesis, float]] | None = None
        completed = False
        self.metrics.active.inc()
        try:
            pending = loop.run_in_executor(self.executor, run, prepared.sentences[0])
            for index in range(len(prepared.sentences)):
                assert pending is not None
                synthesis, seconds = await pending
                pending = None
                if index + 1 < len(prepared.sentences):
                    # Synthesize the next sentence while this one is being sent.
                    pending = loop.run_in_executor(
                        self.executor, run, prepared.sentences[index + 1]
                    )
                synth_seconds += seconds
                audio_seconds += len(synthesis.audio) / synthesis.sample_rate
                pcm = resampler.process(synthesis.audio.tobytes())
                if index + 1 == len(prepared.sentences):
                    pcm += resampler.flush()
                produced.append(pcm)
                for chunk in self.chunks_of(pcm, prepared.sample_rate):
                    yield chunk
            completed = True
        finally:
            if not completed:
                # No await here: the consumer is gone or cancelled. Abort the running inference
                # (its thread stops within milliseconds) and let nothing incomplete be cached.
                token.cancel()
                self._observe_release(token, pending)
            self.metrics.active.dec()
        if audio_seconds > 0:
            self.metrics.rtf.observe(synth_seconds / audio_seconds)
        await self.cache.put(prepared.key, b"".join(produced))

    def _observe_release(self, token: CancelToken, pending: asyncio.Future[Any] | None) -> None:
        """Record how long the CPU stayed busy after the cancel: 0 if no inference was running."""
        cancelled_at = token.cancelled_at or time.perf_counter()
        if pending is None or pending.done():
            self.metrics.cancel_latency.observe(time.perf_counter() - cancelled_at)
            if pending is not None and not pending.cancelled():
                pending.exception()  # consumed, so it is not reported as never retrieved
            return

        def released(future: asyncio.Future[Any]) -> None:
            self.metrics.cancel_latency.observe(time.perf_counter() - cancelled_at)
            if not future.cancelled():
                future.exception()

        pending.add_done_callback(released)

    async def render(self, prepared: Prepared) -> bytes:
        """The whole utterance (prerender, files): from the cache or synthesized and cached."""
        hit = await self.cache.get(prepared.key)
        if hit is not None:
            return hit.pcm
        return b"".join([chunk async for chunk in self.synthesize(prepared)])
