"""Which voice speaks a request: by its voice id, its language, or the script of its text.

A language is spoken only by a voice of that language: Cyrillic text is never given to the
English voice. A language the gateway has no voice for is refused with the voice's registry name
and the command that fetches it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from callkit.errors import InvalidInput, NotFound
from callkit.models import Registry
from tts_gateway.engines import TtsEngine

_CYRILLIC = re.compile(r"[А-Яа-яЁё]")
_LATIN = re.compile(r"[A-Za-z]")
#: Languages written in Cyrillic that a voice may speak.
CYRILLIC_LANGUAGES = frozenset({"ru", "uk", "be", "bg", "sr", "kk"})


class VoiceMissing(NotFound):
    """No voice for the requested language (or voice id) is loaded here."""

    code = "voice_missing"


@dataclass(frozen=True, slots=True)
class MissingVoice:
    """A voice the configuration asks for that could not be loaded, and why."""

    name: str
    language: str | None
    error: str  # the model store's message (where it looked, what was wrong)

    @property
    def reason(self) -> str:
        """The error, with the command that fetches the voice and what to do after it."""
        hint = pull_hint(self.name)
        fetch = "" if hint in self.error else f"; fetch it with {hint}"
        return f"{self.error}{fetch}; then restart the TTS gateway"


def base_language(code: str) -> str:
    """ "ru-RU" → "ru", "en_US" → "en"."""
    return code.lower().replace("_", "-").split("-")[0]


def script_language(text: str) -> str | None:
    """ "ru" for text written mostly in Cyrillic; None otherwise (the default voice's)."""
    cyrillic = len(_CYRILLIC.findall(text))
    return "ru" if cyrillic and cyrillic >= len(_LATIN.findall(text)) else None


def registry_voice(registry: Registry, language: str) -> str | None:
    """The registry's first voice for a language (the one a deployment pulls for it)."""
    base = base_language(language)
    for entry in registry.select(kind="tts"):
        if any(base_language(code) == base for code in entry.languages):
            return entry.name
    return None


def pull_hint(name: str) -> str:
    return f"`agent-models pull {name}`"


class VoiceBook:
    """The loaded voices, the ones that could not be loaded, and how a request picks one."""

    def __init__(
        self,
        engines: Mapping[str, TtsEngine],
        default_voice: str,
        *,
        missing: Mapping[str, MissingVoice] | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.engines = dict(engines)
        self.default_voice = default_voice
        self.missing = dict(missing or {})
        self.registry = registry

    def choose(self, text: str, voice: str | None, language: str | None) -> TtsEngine:
        if voice:
            engine = self._by_name(voice)
            if language and base_language(engine.language) != base_language(language):
                raise InvalidInput(
                    f"voice {voice!r} speaks {engine.language!r}, not {language!r}",
                    code="voice_language_mismatch",
                )
        else:
            wanted = language or script_language(text)
            engine = self._by_language(wanted) if wanted else self._by_name(self.default_voice)
        script = script_language(text)
        if script is not None and base_language(engine.language) not in CYRILLIC_LANGUAGES:
            raise InvalidInput(
                f"the text is written in Cyrillic and voice {engine.name!r} speaks "
                f"{engine.language!r}; ask with language 'ru' or a Russian voice",
                code="voice_language_mismatch",
            )
        return engine

    def _by_name(self, name: str) -> TtsEngine:
        engine = self.engines.get(name)
        if engine is not None:
            return engine
        if name in self.missing:
            raise VoiceMissing(f"voice {name!r} is not loaded: {self.missing[name].reason}")
        raise NotFound(f"unknown voice {name!r}; available: {', '.join(sorted(self.engines))}")

    def _by_language(self, language: str) -> TtsEngine:
        base = base_language(language)
        default = self.engines.get(self.default_voice)
        if default is not None and base_language(default.language) == base:
            return default
        for engine in self.engines.values():
            if base_language(engine.language) == base:
                return engine
        for gone in self.missing.values():
            if gone.language and base_language(gone.language) == base:
                raise VoiceMissing(f"no voice for language {language!r} is loaded: {gone.reason}")
        suggestion = registry_voice(self.registry, base) if self.registry else None
        if suggestion is None:
            raise VoiceMissing(
                f"no voice for language {language!r}: the model registry has none; "
                f"loaded: {self.languages_text()}"
            )
        raise VoiceMissing(
            f"no voice for language {language!r} is configured (loaded: {self.languages_text()}); "
            f'add "{base}" to TTS_LANGUAGES, fetch its voice with {pull_hint(suggestion)} '
            "and restart the TTS gateway"
        )

    def languages_text(self) -> str:
        spoken = sorted({f"{e.language} ({name})" for name, e in self.engines.items()})
        return ", ".join(spoken) or "none"
