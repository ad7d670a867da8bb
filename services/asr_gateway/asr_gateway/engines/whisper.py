"""faster-whisper (CTranslate2): int8 on CPU, float16 on CUDA, loaded once from the registry."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from asr_gateway.engines.base import Segment, Transcription
from callkit.models import ModelStore


def cuda_available() -> bool:
    try:
        import ctranslate2

        return bool(ctranslate2.get_cuda_device_count() > 0)
    except Exception:
        return False


class FasterWhisperEngine:
    def __init__(
        self, store: ModelStore, model: str, *, device: str = "auto", cpu_threads: int = 2
    ) -> None:
        from faster_whisper import WhisperModel

        entry = store.registry.get(model)
        if entry.kind != "asr" or entry.engine != "faster-whisper":
            raise ValueError(
                f"{model} is a {entry.kind}/{entry.engine} model, not a faster-whisper one"
            )
        self.device = (
            "cuda" if device == "cuda" or (device == "auto" and cuda_available()) else "cpu"
        )
        compute = "float16" if self.device == "cuda" else "int8"
        self.name = model
        self.english_only = entry.languages == ["en"]
        self._model = WhisperModel(
            str(store.resolve(model)),
            device=self.device,
            compute_type=compute,
            cpu_threads=cpu_threads,
        )

    def transcribe(
        self,
        audio: npt.NDArray[np.float32],
        *,
        language: str | None,
        hotwords: list[str],
        with_timestamps: bool = False,
    ) -> Transcription:
        segments, info = self._model.transcribe(
            audio,
            language="en" if self.english_only else language,
            beam_size=1,
            vad_filter=False,  # the gateway's own VAD decided what to send
            condition_on_previous_text=False,
            without_timestamps=not with_timestamps,
            hotwords=" ".join(hotwords) if hotwords else None,
        )
        out = tuple(
            Segment(
                s.start, s.end, s.text.strip(), s.avg_logprob, s.no_speech_prob, s.compression_ratio
            )
            for s in segments
        )
        return Transcription(" ".join(s.text for s in out if s.text).strip(), info.language, out)

    def transcribe_batch(
        self,
        audios: list[npt.NDArray[np.float32]],
        *,
        language: str,
        hotwords: list[str],
    ) -> list[Transcription]:
        """Several sessions' clips (each up to 30 s) in one encoder and decoder pass.

        The same decoding as ``transcribe`` for a clip that fits one window (greedy, no
        timestamps, no previous text, the same suppressed tokens), minus the temperature
        fallback, which cannot run per item inside a batch. On a GPU the batch costs little more
        than one clip; on a CPU it costs about as much as the clips one after another.
        """
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens

        model = self._model
        lang = "en" if self.english_only else language
        tokenizer = Tokenizer(
            model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=lang
        )
        prompt = model.get_prompt(
            tokenizer,
            [],
            without_timestamps=True,
            hotwords=" ".join(hotwords) if hotwords else None,
        )
        features = np.stack([pad_or_trim(model.feature_extractor(a)) for a in audios])
        results = model.model.generate(
            model.encode(features),
            [list(prompt) for _ in audios],
            beam_size=1,
            max_length=model.max_length,
            suppress_blank=True,
            suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
            return_scores=True,
            return_no_speech_prob=True,
        )
        out = []
        for audio, result in zip(audios, results, strict=True):
            tokens = result.sequences_ids[0]
            text = tokenizer.decode(tokens).strip()
            avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
            segments = (
                (
                    Segment(
                        0.0,
                        len(audio) / 16000,
                        text,
                        avg_logprob,
                        result.no_speech_prob,
                        get_compression_ratio(text),
                    ),
                )
                if text
                else ()
            )
            out.append(Transcription(text, lang, segments))
        return out
