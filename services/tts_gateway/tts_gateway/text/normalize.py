"""Per-language normalizers behind one interface; a language without one is refused clearly."""

from __future__ import annotations

import re
import unicodedata
from typing import Protocol

from callkit.errors import UnsupportedFormat
from tts_gateway.text.normalize_en import EnglishNormalizer
from tts_gateway.text.normalize_ru import RussianNormalizer

# C0/C1 control characters other than tab and newline.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class Normalizer(Protocol):
    language: str

    def normalize(self, text: str) -> str: ...


_NORMALIZERS: dict[str, Normalizer] = {"en": EnglishNormalizer(), "ru": RussianNormalizer()}


def normalizer_for(language: str) -> Normalizer:
    """The normalizer of a language code ("en", "en-US" → "en")."""
    base = language.lower().split("-")[0].split("_")[0]
    try:
        return _NORMALIZERS[base]
    except KeyError:
        supported = ", ".join(sorted(_NORMALIZERS))
        raise UnsupportedFormat(
            f"no text normalizer for language {language!r}; supported: {supported}"
        ) from None


def has_control_characters(text: str) -> bool:
    return bool(_CONTROL.search(text))


_TYPOGRAPHY: dict[int, str] = {
    ord("\u2018"): "'",
    ord("\u2019"): "'",
    ord("\u201c"): '"',
    ord("\u201d"): '"',
    ord("\u2013"): "-",
    ord("\u2014"): " - ",
    ord("\u00a0"): " ",
}


def clean(text: str) -> str:
    """Unicode NFC, typographic quotes and dashes to plain ones, whitespace collapsed."""
    text = unicodedata.normalize("NFC", text)
    text = text.translate(_TYPOGRAPHY)
    return re.sub(r"[ \t]+", " ", text).strip()
