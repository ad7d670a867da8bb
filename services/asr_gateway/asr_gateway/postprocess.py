"""Post-processing of final transcripts: hot words, entity formatting, hallucination guard.

All three are pure functions of text (and, for the guard, the recognizer's own confidence and
the VAD's view of the audio), so they are table-tested. The raw text is always kept alongside.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

from callkit.spoken import numbers_to_digits

# ---------------------------------------------------------------- hot words


def _phonetic(word: str) -> str:
    """A crude sound-alike key: letters that sound alike merged, vowels collapsed, doubles dropped.

    Latin and Cyrillic alike: Russian vowels collapse as English ones do, the soft and hard
    signs and "й" are dropped, "ё" is "е".
    """
    w = word.lower()
    w = re.sub(r"[ьъй]", "", w.replace("ё", "е"))
    w = re.sub(r"[аоуыэеиюя]+", "a", w)
    for a, b in (
        ("ph", "f"),
        ("ck", "k"),
        ("qu", "kw"),
        ("x", "ks"),
        ("c", "k"),
        ("z", "s"),
        ("oo", "u"),
        ("ou", "u"),
        ("ee", "i"),
        ("ea", "i"),
        ("y", "i"),
        ("w", "u"),
    ):
        w = w.replace(a, b)
    w = re.sub(r"[^a-zа-яё0-9]", "", w)
    w = re.sub(r"(.)\1+", r"\1", w)
    w = re.sub(r"h(?=[^aeiou]|$)", "", w)
    return re.sub(r"[aeiou]+", "a", w)


# Everyday words that sound like short product names ("room" ~ "RUMA", "рама" ~ "РУМА") are
# never replaced.
COMMON_WORDS = frozenset(
    [
        "рама",
        "раму",
        "рамы",
        "ром",
        "рома",
        "рому",
        "рим",
        "риме",
        "рум",
        "рука",
        "руку",
        "руки",
        "кто",
        "кот",
        "кит",
        "как",
        "уже",
        "узы",
        "a",
        "about",
        "after",
        "again",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "back",
        "be",
        "been",
        "before",
        "being",
        "both",
        "but",
        "by",
        "call",
        "can",
        "come",
        "could",
        "day",
        "did",
        "do",
        "doctor",
        "does",
        "done",
        "down",
        "each",
        "even",
        "every",
        "few",
        "find",
        "first",
        "for",
        "from",
        "get",
        "give",
        "go",
        "good",
        "got",
        "had",
        "has",
        "have",
        "he",
        "her",
        "here",
        "him",
        "his",
        "home",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "just",
        "know",
        "last",
        "leave",
        "like",
        "look",
        "made",
        "make",
        "man",
        "many",
        "may",
        "me",
        "more",
        "most",
        "much",
        "must",
        "my",
        "name",
        "need",
        "new",
        "next",
        "no",
        "not",
        "now",
        "of",
        "off",
        "old",
        "on",
        "once",
        "one",
        "only",
        "or",
        "other",
        "our",
        "out",
        "over",
        "own",
        "part",
        "pay",
        "people",
        "place",
        "please",
        "put",
        "rather",
        "really",
        "right",
        "room",
        "same",
        "say",
        "see",
        "she",
        "should",
        "so",
        "some",
        "still",
        "such",
        "take",
        "tell",
        "than",
        "thank",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "thing",
        "think",
        "this",
        "those",
        "time",
        "to",
        "today",
        "too",
        "try",
        "turn",
        "two",
        "under",
        "up",
        "us",
        "use",
        "very",
        "want",
        "was",
        "way",
        "we",
        "well",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "why",
        "will",
        "with",
        "work",
        "would",
        "year",
        "yes",
        "yet",
        "you",
        "your",
    ]
)


def _similar(a: str, b: str) -> float:
    raw = SequenceMatcher(None, a.lower(), b.lower()).ratio()
    sound = SequenceMatcher(None, _phonetic(a), _phonetic(b)).ratio()
    return max(raw, sound)


# How Russian letters are named when an abbreviation is spelled out ("эм-эр-тэ" is МРТ).
_LETTER_NAMES_RU = {
    "А": "а",
    "Б": "бэ",
    "В": "вэ",
    "Г": "гэ",
    "Д": "дэ",
    "Е": "е",
    "Ж": "жэ",
    "З": "зэ",
    "И": "и",
    "К": "ка",
    "Л": "эл",
    "М": "эм",
    "Н": "эн",
    "О": "о",
    "П": "пэ",
    "Р": "эр",
    "С": "эс",
    "Т": "тэ",
    "У": "у",
    "Ф": "эф",
    "Х": "ха",
    "Ц": "цэ",
    "Ч": "че",
    "Ш": "ша",
    "Э": "э",
    "Ю": "ю",
    "Я": "я",
}
SHORT_TERM = 3  # terms this short are matched exactly (or spelled out), never by likeness


def _plain(text: str) -> str:
    return re.sub(r"[^\w]", "", text).lower()


def _spelled(term: str) -> str | None:
    """A Russian abbreviation as its letters are named ("МРТ" -> "эмэртэ"); None otherwise."""
    if not term.isupper() or not all(c in _LETTER_NAMES_RU for c in term):
        return None
    return "".join(_LETTER_NAMES_RU[c] for c in term)


class HotwordCorrector:
    """Replaces words (or short runs of words) that sound like a configured term by the term.

    The original design's case: a product name ("RUMA") the model keeps writing as "Rooma" or
    "Roomer". Only runs whose first letters sound alike and whose similarity passes
    ``threshold`` are replaced, so ordinary words are left alone.
    """

    def __init__(self, vocabulary: list[str], threshold: float = 0.8) -> None:
        self.vocabulary = [v for v in (t.strip() for t in vocabulary) if v]
        self.threshold = threshold

    def correct(self, text: str) -> str:
        if not self.vocabulary or not text:
            return text
        tokens = re.findall(r"\S+", text)
        out: list[str] = []
        i = 0
        while i < len(tokens):
            best: tuple[float, int, str] | None = None
            for term in self.vocabulary:
                n = len(term.split())
                spans = {n, n + 1} | ({len(term)} if _spelled(term) else set())
                for span in spans - {0}:
                    if i + span > len(tokens):
                        continue
                    words = tokens[i : i + span]
                    candidate = " ".join(re.sub(r"[^\w'-]", "", w) for w in words)
                    if not candidate:
                        continue
                    if _plain(candidate) != _spelled(term) and (
                        _phonetic(candidate)[:1] != _phonetic(term)[:1]
                    ):
                        continue
                    if candidate.lower() in COMMON_WORDS:
                        continue
                    score = self._score(candidate, term)
                    if score >= self.threshold and (best is None or score > best[0]):
                        best = (score, span, term)
            if best is None:
                out.append(tokens[i])
                i += 1
                continue
            _, span, term = best
            trailing = re.search(r"[^\w'-]+$", tokens[i + span - 1])
            out.append(term + (trailing.group(0) if trailing else ""))
            i += span
        return " ".join(out)

    def _score(self, candidate: str, term: str) -> float:
        plain = _plain(candidate)
        if plain == _plain(term) or plain == _spelled(term):
            return 1.0
        if len(_plain(term)) <= SHORT_TERM:
            # "кто" is 0.8 like "КТ", "cat" like "CT": a short term is only taken as said.
            return 0.0
        return _similar(candidate.replace(" ", ""), term.replace(" ", ""))


# ---------------------------------------------------------------- entity formatting


def _format_phone(digits: str, language: str = "en") -> str:
    if language == "ru":
        # Russian numbers as they are written: +7 916 123-45-67 (8 916 ... is the same number).
        if len(digits) == 11 and digits[0] in "78":
            digits = digits[1:]
        if len(digits) == 10:
            return f"+7 {digits[:3]} {digits[3:6]}-{digits[6:8]}-{digits[8:]}"
        return digits
    if len(digits) == 10:
        return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
    if len(digits) == 11 and digits[0] == "1":
        return f"+1 {digits[1:4]}-{digits[4:7]}-{digits[7:]}"
    if len(digits) == 11 and digits[0] in "78":
        return f"+7 {digits[1:4]} {digits[4:7]}-{digits[7:9]}-{digits[9:]}"
    return digits


def format_entities(text: str, language: str = "en") -> str:
    """Numbers as digits and phone numbers, ages, weights, times and prices in one written form,
    in the session's language (``numbers_to_digits`` converts that language's number words)."""
    language = language.lower()
    text = numbers_to_digits(text, language)

    # Phone numbers: 10-11 digits however the recognizer grouped them ("555, 123, 4,567").
    def phone(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(0))
        return _format_phone(digits, language) if len(digits) in (10, 11) else m.group(0)

    text = re.sub(r"(?<![\d$])\+?\d[\d\s,.()-]{8,}\d(?![\d%])", phone, text)
    if language == "ru":
        return _russian_units(text)
    # Times: "3pm", "3 p.m.", "3.30pm", "1015 AM" -> "3 PM", "3:30 PM", "10:15 AM".
    text = re.sub(
        r"\b(\d{1,2})[.:]?(\d{2})\s?([ap])\.?m\.?(?!\w)",
        lambda m: f"{m.group(1)}:{m.group(2)} {m.group(3).upper()}M",
        text,
        flags=re.I,
    )
    text = re.sub(
        r"\b(\d{1,2})\s?([ap])\.?m\.?(?!\w)",
        lambda m: f"{m.group(1)} {m.group(2).upper()}M",
        text,
        flags=re.I,
    )
    # Prices: "120 dollars" -> "$120", "85 dollars and 50 cents" -> "$85.50".
    text = re.sub(
        r"\b(\d+) dollars? and (\d{1,2}) cents?\b",
        lambda m: f"${m.group(1)}.{int(m.group(2)):02d}",
        text,
    )
    text = re.sub(r"\b(\d+(?:\.\d{2})?) dollars?\b", r"$\1", text)
    text = re.sub(r"\b(\d+) (rubles?|roubles?)\b", r"\1 ₽", text)
    # Weights and ages.
    text = re.sub(r"\b(\d+(?:\.\d+)?) ?(?:kilograms?|kilos?|kgs?)\b", r"\1 kg", text, flags=re.I)
    text = re.sub(r"\b(\d+) ?(?:pounds?|lbs?)\b(?! sterling)", r"\1 lb", text, flags=re.I)
    return re.sub(r"\b(\d+) years? old\b", r"\1 years old", text)


def _russian_units(text: str) -> str:
    """Russian prices, weights and times in their written forms: "4500 рублей" -> "4500 ₽",
    "82 килограмма" -> "82 кг", "в 14 30" -> "в 14:30"."""
    # number-parser leaves a space between a number it wrote and the punctuation after it.
    text = re.sub(r"(?<=\d) +(?=[?!;:,.](?!\d))", "", text)
    text = re.sub(r"(?i)\b(\d+) руб(?:л(?:ь|я|ей)|\.)(?!\w)", r"\1 ₽", text)
    text = re.sub(r"(?i)\b(\d+(?:[.,]\d+)?) ?(?:килограмм(?:а|ов)?|кило|кг)(?!\w)", r"\1 кг", text)
    return re.sub(
        r"(?i)\b(в|к|с|до|на) ([01]?\d|2[0-3])[ .:]([0-5]\d)\b(?![.,:]?\d)", r"\1 \2:\3", text
    )


# ---------------------------------------------------------------- hallucination guard

# Whisper's own thresholds: above this no-speech probability with a log probability under
# LOGPROB_DOUBT it takes a window for silence (faster-whisper skips it); under LOGPROB_DOUBT it
# decodes again at a higher temperature.
NO_SPEECH_SURE = 0.6
LOGPROB_DOUBT = -1.0
COMPRESSION_MAX = 2.4
# Measured on whisper base (int8) over G.711: words invented on audio with little speech in it
# (speech cut to fragments, silence, line noise) come at an average log probability of -1.3 to
# -1.9 with a no-speech probability of 0.35-0.6; real answers, even misheard ones, at -0.4 to
# -1.1 (tests/unit/test_hallucination_guard.py holds the measured cases).
LOGPROB_GUESS = -1.25
NO_SPEECH_WEAK = 0.35
SPEECH_RATIO_WEAK = 0.3

# Texts Whisper is known to invent on silence and noise (its training data's video captions):
# dropped only on weak evidence, so a caller who really says "thank you" is heard.
PHANTOM_PHRASES = frozenset(
    {
        "thank you for watching",
        "thanks for watching",
        "please subscribe",
        "subscribe to my channel",
        "subtitles by the amara org community",
        "transcribed by",
        "you",
        "bye",
        "thank you",
        "продолжение следует",
        "редактор субтитров",
        "субтитры сделал",
        "спасибо за просмотр",
        "спасибо",
        "спасибо за внимание",
    }
)
# Words no clinic caller strings together, however a phantom text goes on around them.
PHANTOM_MARKERS = (
    "next video",
    "this video",
    "the video",
    "watching",
    "subscribe",
    "my channel",
    "the channel",
    "subtitles",
    "see you next time",
    "субтитр",
    "подписывайтесь",
    "ставьте лайк",
    "на канал",
)
_NUMBER_WORDS = re.compile(
    r"^(\d+|oh|zero|one|two|three|four|five|six|seven|eight|nine"
    r"|ноль|один|одна|два|две|три|четыре|пять|шесть|семь|восемь|девять)$"
)


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the recognizer and the VAD say about one final."""

    no_speech_prob: float
    avg_logprob: float
    compression_ratio: float
    speech_ratio: float  # share of the utterance's frames the VAD called speech

    @property
    def weak(self) -> bool:
        """The audio or the model casts doubt on there being words at all."""
        return (
            self.no_speech_prob > NO_SPEECH_WEAK
            or self.speech_ratio < SPEECH_RATIO_WEAK
            or self.avg_logprob < -0.8
        )


def loops(normalized: str) -> bool:
    """Whether the text says a run of three words or more twice: Whisper decoding in circles
    ("the new design of the new design"). Runs of digits (phone numbers) do not count."""
    words = normalized.split()
    seen: set[tuple[str, ...]] = set()
    for i in range(len(words) - 2):
        run = tuple(words[i : i + 3])
        if all(_NUMBER_WORDS.match(w) for w in run):
            continue
        if run in seen:
            return True
        seen.add(run)
    return False


def _normalized(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", "", text.lower().replace("ё", "е"))).strip()


def hallucination_reason(text: str, evidence: Evidence, prompt: str | None = None) -> str | None:
    """Why this final should be dropped, or None to keep it.

    The model's own signals decide first (the no-speech probability, the average log
    probability, the compression ratio) with the VAD's share of speech frames; a text that loops,
    holds a known phantom phrase or says the session's initial ``prompt`` back is dropped only
    when that evidence is weak too.
    """
    normalized = _normalized(text)
    if not normalized:
        return "empty"
    if evidence.speech_ratio < 0.1:
        return "no speech in the audio (VAD)"
    if evidence.no_speech_prob > NO_SPEECH_SURE and evidence.avg_logprob < LOGPROB_DOUBT:
        return "recognizer says no speech"
    if evidence.compression_ratio > COMPRESSION_MAX:
        return "repetitive output"
    if evidence.avg_logprob < LOGPROB_GUESS and (
        evidence.no_speech_prob > NO_SPEECH_WEAK or evidence.speech_ratio < SPEECH_RATIO_WEAK
    ):
        return "recognizer guessing on weak speech"
    if not evidence.weak:
        return None
    if loops(normalized):
        return "repetitive output on weak speech"
    if normalized in PHANTOM_PHRASES or any(m in normalized for m in PHANTOM_MARKERS):
        return "known phantom phrase on weak speech"
    if prompt and len(normalized.split()) >= 3 and normalized in _normalized(prompt):
        return "initial prompt said back on weak speech"
    return None
