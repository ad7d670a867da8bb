"""faster-whisper (CTranslate2): int8 on CPU, float16 on CUDA, loaded once from the registry.

Whisper's encoder always reads a 30-second window; a 3-second utterance padded to 30 s spends
most of the encoder's time on padding. On a CPU the engine can give the encoder a shorter
window that fits the clip (``window_s``): the clip plus at least 3 s of padding, never less than
``window_s`` in all. Short windows make Whisper repeat itself ("No. No.", "Seven Seven ..."), so
every fitted result is checked and decoded again over the full window when it repeats, runs past
a length the audio cannot hold, or trips Whisper's own fallback thresholds (compression ratio,
log probability). Measured on the bundled clinic sentences and short answers: see the README.

Whisper's own fallback decodes a doubtful clip again at rising temperatures, up to six passes
over the full window: on two CPU cores about 5 s for a 2 s mumble, during which every other
call's finals wait for the model. A call's finals and partials (``fallback=False``) are
decoded again only for what the fitted window itself causes (repetition, too many tokens), with
one greedy pass over the full window; file transcription keeps the whole fallback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from asr_gateway.engines.base import Segment, Transcription
from asr_gateway.languages import UnsupportedLanguage
from callkit.models import ModelStore

if TYPE_CHECKING:
    from faster_whisper.tokenizer import Tokenizer

FULL_WINDOW_S = 30
#: faster-whisper's default schedule: a doubtful result is decoded again at each.
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
FIT_PAD_S = 3  # padding after the clip inside a fitted window
FRAMES_PER_S = 100  # Whisper's mel frames (10 ms hop)
TOKENS_PER_S = 10  # a cap no speech reaches (fast speech is about 6 tokens a second)
# Whisper's own thresholds for decoding again (faster-whisper's defaults).
COMPRESSION_RATIO_MAX = 2.4
LOGPROB_MIN = -1.0
NO_SPEECH_MIN = 0.6

_WORD = re.compile(r"[\w']+")


def cuda_available() -> bool:
    try:
        import ctranslate2

        return bool(ctranslate2.get_cuda_device_count() > 0)
    except Exception:
        return False


def repeats_itself(text: str) -> bool:
    """Whether a text looks like Whisper looping rather than a caller repeating a word.

    A run of two or more words said twice in a row ("I am I am"), a word said four times
    in a row, or any repeated word in a text of at most three ("No. No.", "7 7"). A phone number
    read digit by digit ("five five five, one two ...") is not a loop.
    """
    words = _WORD.findall(text.lower())
    for n in range(1, len(words) // 2 + 1):
        for i in range(len(words) - 2 * n + 1):
            if words[i : i + n] != words[i + n : i + 2 * n]:
                continue
            if n > 1 or len(words) <= 3 or words[i : i + 4] == words[i : i + 1] * 4:
                return True
    return False


@dataclass(frozen=True, slots=True)
class _Decoded:
    text: str
    language: str
    segments: list[tuple[float, float, str]]
    tokens: int
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    window_s: float

    @property
    def silence(self) -> bool:
        # What faster-whisper skips as silence: likely no speech and an unlikely text.
        return self.no_speech_prob > NO_SPEECH_MIN and self.avg_logprob < LOGPROB_MIN

    def trusted(self, audio_s: float, *, doubtful_ok: bool = False) -> bool:
        """False when Whisper would decode again, or the window was fitted and it repeats.

        ``doubtful_ok``: a low log probability alone is no reason to decode again (a call's
        final: the full window's greedy pass rarely reads a mumble better, and costs 1.5 s).
        """
        if self.silence:
            return True
        if self.compression_ratio > COMPRESSION_RATIO_MAX:
            return False
        if self.avg_logprob < LOGPROB_MIN and not doubtful_ok:
            return False
        fitted = self.window_s < FULL_WINDOW_S
        return not fitted or (
            self.tokens < TOKENS_PER_S * audio_s + 8 and not repeats_itself(self.text)
        )

    def transcription(self) -> Transcription:
        if self.silence:
            return Transcription("", self.language, (), window_s=self.window_s)
        segments = tuple(
            Segment(a, b, t, self.avg_logprob, self.no_speech_prob, self.compression_ratio)
            for a, b, t in self.segments
        )
        return Transcription(self.text, self.language, segments, window_s=self.window_s)


class FasterWhisperEngine:
    def __init__(
        self,
        store: ModelStore,
        model: str,
        *,
        device: str = "auto",
        cpu_threads: int = 2,
        window_s: int = 0,
        prompts: dict[str, str] | None = None,
    ) -> None:
        from faster_whisper import WhisperModel

        entry = store.registry.get(model)
        if entry.kind != "asr" or entry.engine != "faster-whisper":
            raise ValueError(
                f"{model} is a {entry.kind}/{entry.engine} model, not a faster-whisper one"
            )
        if not 0 <= window_s <= FULL_WINDOW_S:
            raise ValueError(f"window_s must be 0 (auto) to {FULL_WINDOW_S}, not {window_s}")
        self.device = (
            "cuda" if device == "cuda" or (device == "auto" and cuda_available()) else "cpu"
        )
        compute = "float16" if self.device == "cuda" else "int8"
        self.name = model
        self.english_only = entry.languages == ["en"]
        # Per language: the text the decoder reads before each utterance (the initial prompt).
        self.prompts = {k.lower(): v for k, v in (prompts or {}).items() if v.strip()}
        # Auto: the full window on a GPU (the encoder is not what a call waits for there),
        # a fitted one of at least 15 s on a CPU.
        self.window_s = window_s or (FULL_WINDOW_S if self.device == "cuda" else 15)
        self._tokenizers: dict[str, tuple[Tokenizer, list[int]]] = {}
        self._model = WhisperModel(
            str(store.resolve(model)),
            device=self.device,
            compute_type=compute,
            cpu_threads=cpu_threads,
        )

    # ------------------------------------------------------------------ the interface

    def transcribe(
        self,
        audio: npt.NDArray[np.float32],
        *,
        language: str | None,
        hotwords: list[str],
        with_timestamps: bool = False,
        fallback: bool = True,
    ) -> Transcription:
        lang = self._language(language)
        if lang is None or not self._fits(audio):
            return self._full(
                audio, lang, hotwords, with_timestamps=with_timestamps, fallback=fallback
            )
        return self.transcribe_batch(
            [audio],
            language=lang,
            hotwords=hotwords,
            with_timestamps=with_timestamps,
            fallback=fallback,
        )[0]

    def transcribe_batch(
        self,
        audios: list[npt.NDArray[np.float32]],
        *,
        language: str,
        hotwords: list[str],
        with_timestamps: bool = False,
        fallback: bool = True,
    ) -> list[Transcription]:
        """Several sessions' clips in one encoder and decoder pass (clips over 30 s one by one).

        The same decoding as ``transcribe``; a clip whose result needs Whisper's fallback is
        decoded again on its own over the full window. On a GPU the batch costs little more
        than one clip; on a CPU it costs about as much as the clips one after another.
        """
        lang = self._language(language)
        assert lang is not None
        if any(len(a) > FULL_WINDOW_S * 16000 for a in audios):
            # One window cannot hold a clip this long (ASR_MAX_SPEECH_MS allows up to 60 s).
            return [
                self.transcribe(
                    a,
                    language=lang,
                    hotwords=hotwords,
                    with_timestamps=with_timestamps,
                    fallback=fallback,
                )
                for a in audios
            ]
        fitted = all(self._fits(a) for a in audios)
        frames = self._frames(audios) if fitted else FULL_WINDOW_S * FRAMES_PER_S
        decoded = self._decode(audios, lang, hotwords, frames, timestamps=with_timestamps)
        return [
            d.transcription()
            if d.trusted(len(a) / 16000, doubtful_ok=not fallback)
            else self._full(
                a,
                lang,
                hotwords,
                with_timestamps=with_timestamps,
                fallback=fallback,
                retried=True,
            )
            for a, d in zip(audios, decoded, strict=True)
        ]

    # ------------------------------------------------------------------ decoding

    def _language(self, language: str | None) -> str | None:
        """The language to decode in: the session's, never another one in its place."""
        if not self.english_only:
            return language
        if language not in (None, "en"):
            raise UnsupportedLanguage(f"model {self.name} decodes only English, not {language!r}")
        return "en"

    def _fits(self, audio: npt.NDArray[np.float32]) -> bool:
        return self.window_s < FULL_WINDOW_S and len(audio) / 16000 + FIT_PAD_S < FULL_WINDOW_S

    def _frames(self, audios: list[npt.NDArray[np.float32]]) -> int:
        """A fitted window for these clips: the longest plus padding, at least ``window_s``."""
        longest_s = max(len(a) for a in audios) / 16000
        frames = int(max(self.window_s, longest_s + FIT_PAD_S) * FRAMES_PER_S)
        return min(FULL_WINDOW_S * FRAMES_PER_S, frames + frames % 2)

    def _tokenizer(self, lang: str) -> tuple[Tokenizer, list[int]]:
        """The tokenizer and suppressed tokens for a language, built once (they cost ~15 ms)."""
        if lang not in self._tokenizers:
            from faster_whisper.tokenizer import Tokenizer
            from faster_whisper.transcribe import get_suppressed_tokens

            model = self._model
            tokenizer = Tokenizer(
                model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=lang
            )
            self._tokenizers[lang] = (tokenizer, get_suppressed_tokens(tokenizer, [-1]))
        return self._tokenizers[lang]

    def _decode(
        self,
        audios: list[npt.NDArray[np.float32]],
        lang: str,
        hotwords: list[str],
        frames: int,
        *,
        timestamps: bool,
    ) -> list[_Decoded]:
        """Greedy decoding of one window of ``frames`` mel frames per clip.

        With ``timestamps`` the model writes segment times as offline transcription does (its
        text reads better, with punctuation and casing); without, it is a little faster.
        """
        from faster_whisper.transcribe import get_compression_ratio

        model = self._model
        tokenizer, suppressed = self._tokenizer(lang)
        initial = self.prompts.get(lang)
        prompt = model.get_prompt(
            tokenizer,
            tokenizer.encode(" " + initial.strip()) if initial else [],
            without_timestamps=not timestamps,
            hotwords=" ".join(hotwords) if hotwords else None,
        )
        mels = [model.feature_extractor(audio)[:, :frames] for audio in audios]
        # Zeros after the clip, as faster-whisper pads a window's features.
        features = np.zeros((len(audios), mels[0].shape[0], frames), np.float32)
        for i, mel in enumerate(mels):
            features[i, :, : mel.shape[-1]] = mel
        longest_s = max(len(a) for a in audios) / 16000
        max_length = min(model.max_length, len(prompt) + int(TOKENS_PER_S * longest_s) + 9)
        results = model.model.generate(
            model.encode(features),
            [list(prompt) for _ in audios],
            beam_size=1,
            max_length=max_length,
            suppress_blank=True,
            suppress_tokens=suppressed,
            max_initial_timestamp_index=50,  # the first segment starts within 1 s
            return_scores=True,
            return_no_speech_prob=True,
        )
        out: list[_Decoded] = []
        for audio, result in zip(audios, results, strict=True):
            tokens = result.sequences_ids[0]
            text = tokenizer.decode(tokens).strip()
            out.append(
                _Decoded(
                    text,
                    lang,
                    _timed_segments(tokens, tokenizer, len(audio) / 16000),
                    len(tokens),
                    result.scores[0] * len(tokens) / (len(tokens) + 1),
                    result.no_speech_prob,
                    get_compression_ratio(text),
                    frames / FRAMES_PER_S,
                )
            )
        return out

    def _full(
        self,
        audio: npt.NDArray[np.float32],
        lang: str | None,
        hotwords: list[str],
        *,
        with_timestamps: bool,
        fallback: bool = True,
        retried: bool = False,
    ) -> Transcription:
        """faster-whisper's own decoding over 30-second windows, with its temperature fallback
        (or, without ``fallback``, the greedy pass alone)."""
        segments, info = self._model.transcribe(
            audio,
            language=lang,
            beam_size=1,
            temperature=FALLBACK_TEMPERATURES if fallback else 0.0,
            vad_filter=False,  # the gateway's own VAD decided what to send
            condition_on_previous_text=False,
            initial_prompt=self.prompts.get(lang) if lang else None,
            without_timestamps=not with_timestamps,
            hotwords=" ".join(hotwords) if hotwords else None,
        )
        out = tuple(
            Segment(
                s.start, s.end, s.text.strip(), s.avg_logprob, s.no_speech_prob, s.compression_ratio
            )
            for s in segments
        )
        return Transcription(
            " ".join(s.text for s in out if s.text).strip(),
            info.language,
            out,
            window_s=FULL_WINDOW_S,
            retried=retried,
        )


def _timed_segments(
    tokens: list[int], tokenizer: Tokenizer, audio_s: float
) -> list[tuple[float, float, str]]:
    """Split a window's tokens at the timestamp tokens: (start, end, text) per segment.

    Without timestamp tokens the whole clip is one segment.
    """
    first_time = tokenizer.timestamp_begin
    segments: list[tuple[float, float, str]] = []
    start = 0.0
    text: list[int] = []
    for token in tokens:
        if token < first_time:
            text.append(token)
            continue
        t = round((token - first_time) * 0.02, 2)
        if text:
            segments.append((start, t, tokenizer.decode(text).strip()))
            text = []
        start = t
    if text:
        segments.append((start, audio_s, tokenizer.decode(text).strip()))
    return [(a, min(b, audio_s), t) for a, b, t in segments if t]
