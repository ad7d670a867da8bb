"""Cache keys, the file cache's size bound, and which prompts count as fixed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from callkit.errors import AgentError
from tts_gateway.cache import FileCache, cache_key
from tts_gateway.prerender import fixed_prompts


def test_cache_key_changes_with_everything_that_changes_the_audio() -> None:
    base = cache_key("joe", "v1", "Hello.", 8000, 1.0)
    assert base == cache_key("joe", "v1", "Hello.", 8000, 1.0)
    variants = [
        cache_key("amy", "v1", "Hello.", 8000, 1.0),
        cache_key("joe", "v2", "Hello.", 8000, 1.0),
        cache_key("joe", "v1", "Hello!", 8000, 1.0),
        cache_key("joe", "v1", "Hello.", 16000, 1.0),
        cache_key("joe", "v1", "Hello.", 8000, 1.1),
    ]
    assert len({base, *variants}) == 6


def test_file_cache_stays_under_its_bound_evicting_least_recently_used(tmp_path: Path) -> None:
    cache = FileCache(tmp_path, max_bytes=10_000)
    for i in range(5):
        cache.put(f"{i:02d}aaaa", bytes(3000))
        os.utime(cache.path(f"{i:02d}aaaa"), (1000 + i, 1000 + i))  # deterministic ages
    assert cache.total_bytes <= 10_000
    on_disk = sum(p.stat().st_size for p in tmp_path.glob("*/*.pcm"))
    assert on_disk == cache.total_bytes
    assert cache.get("04aaaa") is not None  # the newest survives
    assert cache.get("00aaaa") is None  # the oldest went first


def test_file_cache_counts_existing_files_after_a_restart(tmp_path: Path) -> None:
    FileCache(tmp_path, max_bytes=1_000_000).put("abcdef", bytes(1234))
    assert FileCache(tmp_path, max_bytes=1_000_000).total_bytes == 1234


def test_fixed_prompts_are_the_say_texts_of_a_language(tmp_path: Path) -> None:
    (tmp_path / "script.yaml").write_text(
        """
states:
  greeting:
    say: {en: "Hello, this is the clinic.", ru: "Здравствуйте, это клиника."}
  ask_name:
    say:
      en: "May I have your name?"
    reprompt: {en: ["Sorry, what is your name?"]}
  confirm:
    say: {en: "So that is {date} at {time}, correct?"}
  plain:
    say: "Goodbye."
faq:
  - question: hours
    say: {en: "We are open from 8 am to 8 pm."}
"""
    )
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "more.yml").write_text('extra: {say: {en: "May I have your name?"}}')
    assert fixed_prompts(tmp_path, "en") == [  # files in path order, duplicates once
        "May I have your name?",
        "Hello, this is the clinic.",
        "Sorry, what is your name?",
        "Goodbye.",
        "We are open from 8 am to 8 pm.",
    ]
    assert fixed_prompts(tmp_path, "ru") == ["Здравствуйте, это клиника.", "Goodbye."]


def test_a_broken_prompt_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("say: [unclosed")
    with pytest.raises(AgentError, match=r"bad\.yaml: not valid YAML"):
        fixed_prompts(tmp_path, "en")
