"""Which languages the loaded model decodes, and what each session's language brings with it.

A session is decoded in its own language or refused: an English-only model never hears a Russian
call as English, and a language code Whisper does not know is an error, not an auto-detection.
Each language has its own vocabulary (the clinic's name, the study abbreviations: the finals are
corrected towards them) and initial prompt, from the settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from callkit.errors import ConfigError, InvalidInput

# What a registry entry says of a model that decodes every Whisper language.
_ANY = frozenset({"multilingual", "any"})


def whisper_languages() -> frozenset[str]:
    """The language codes multilingual Whisper decodes (faster-whisper's own list)."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return frozenset(_LANGUAGE_CODES)


class UnsupportedLanguage(InvalidInput):
    code = "unsupported_language"


@dataclass(frozen=True)
class Languages:
    """The model's languages and, per language, its vocabulary and initial prompt."""

    model: str
    supported: frozenset[str]
    vocabularies: dict[str, list[str]]
    prompts: dict[str, str]

    @classmethod
    def of(
        cls,
        model: str,
        registry_languages: list[str],
        *,
        vocabularies: dict[str, list[str]] | None = None,
        prompts: dict[str, str] | None = None,
    ) -> Languages:
        codes = [code.lower() for code in registry_languages]
        supported = whisper_languages() if _ANY & set(codes) else frozenset(codes)
        lower = {k.lower(): list(v) for k, v in (vocabularies or {}).items()}
        return cls(model, supported, lower, {k.lower(): v for k, v in (prompts or {}).items()})

    def check(self, language: str) -> str:
        """The language code a session decodes in; UnsupportedLanguage if the model has none."""
        code = language.lower()
        if code not in self.supported:
            raise UnsupportedLanguage(self._why(code))
        return code

    def check_default(self, language: str) -> str:
        """The gateway's default language, checked at start-up (ConfigError: it cannot start)."""
        try:
            return self.check(language)
        except UnsupportedLanguage as exc:
            raise ConfigError(f"ASR_LANGUAGE={language}: {exc.message}") from None

    def vocabulary(self, language: str) -> list[str]:
        return list(self.vocabularies.get(language.lower(), []))

    def prompt(self, language: str) -> str | None:
        return self.prompts.get(language.lower()) or None

    def _why(self, code: str) -> str:
        if len(self.supported) <= 4:
            spoken = ", ".join(sorted(self.supported))
            return (
                f"model {self.model} decodes only {spoken}, not {code!r}; a multilingual model "
                "(ASR_MODEL=whisper-base, or whisper-large-v3-turbo on a GPU) decodes it"
            )
        return f"{code!r} is not a language code the model {self.model} knows"
