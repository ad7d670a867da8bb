"""Prerender: every fixed prompt under prompts/ is synthesized at start-up for each voice and rate.

Fixed prompts are the ``say`` texts of the dialog script (YAML files under prompts/) and of the
bridge's own phrases (``prompts/bridge.json``: JSON, which the bridge reads without a YAML
parser), given as a string or per locale (``say: {en: "...", ru: "..."}``). Texts with
``{placeholders}`` are filled in per call, so they are not fixed and are skipped.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from callkit.errors import AgentError
from tts_gateway.synthesizer import Synthesizer

log = logging.getLogger("tts_gateway.prerender")
PROMPT_KEYS = ("say", "reprompt")


def fixed_prompts(prompts_dir: Path, language: str) -> list[str]:
    """The distinct fixed prompt texts of one language, in file order."""
    seen: dict[str, None] = {}
    paths = sorted([*prompts_dir.rglob("*.y*ml"), *prompts_dir.rglob("*.json")])
    for path in paths:
        for text in _walk(_load(path), language):
            if "{" not in text and text.strip():
                seen.setdefault(text.strip(), None)
    return list(seen)


def _load(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise AgentError(f"{path}: not valid JSON: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AgentError(f"{path}: not valid YAML: {exc}") from None


def _walk(node: Any, language: str) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in PROMPT_KEYS:
                yield from _texts(value, language)
            else:
                yield from _walk(value, language)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, language)


def _texts(value: Any, language: str) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        localized = value.get(language)
        if isinstance(localized, str):
            yield localized
        elif isinstance(localized, list):
            yield from (v for v in localized if isinstance(v, str))
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item, language)


@dataclass
class PrerenderProgress:
    total: int = 0
    done: int = 0
    synthesized: int = 0
    finished: bool = False
    errors: list[str] = field(default_factory=list)


async def prerender(
    synth: Synthesizer,
    prompts_dir: Path,
    voices: Sequence[str],
    rates: Sequence[int],
    progress: PrerenderProgress,
) -> PrerenderProgress:
    """Make sure every fixed prompt is in the cache for every voice and rate."""
    started = time.perf_counter()
    jobs = [
        (voice, rate, text)
        for voice in voices
        for text in fixed_prompts(prompts_dir, synth.engines[voice].language)
        for rate in rates
    ]
    progress.total = len(jobs)
    log.info(
        "prerender started",
        extra={"prompts": progress.total, "voices": list(voices), "rates": list(rates)},
    )
    for voice, rate, text in jobs:
        try:
            prepared = synth.prepare(text, voice, rate)
            if not await synth.cache.contains(prepared.key):
                await synth.render(prepared)
                progress.synthesized += 1
        except AgentError as exc:
            progress.errors.append(exc.message)
            log.warning(
                "prerender of one prompt failed", extra={"voice": voice, "error": exc.message}
            )
        progress.done += 1
        if progress.done % 20 == 0:
            log.info("prerender progress", extra={"done": progress.done, "total": progress.total})
    progress.finished = True
    log.info(
        "prerender finished",
        extra={
            "prompts": progress.total,
            "synthesized": progress.synthesized,
            "seconds": round(time.perf_counter() - started, 2),
        },
    )
    return progress
