"""POST /synthesize: the sentence the bridge asks the TTS gateway to say, and the answer's headers.

The answer is a streamed body: mono 16-bit little-endian PCM at ``sample_rate``
(``audio/L16;rate=…;channels=1``) or, with ``format: "wav"``, a WAV stream whose header cannot
know the length. It starts as soon as the first sentence is synthesized. Its headers say whether
the audio came from the cache (:data:`CACHE_HEADER`: ``hit`` or ``miss``), its rate
(:data:`SAMPLE_RATE_HEADER`) and the voice that spoke (:data:`VOICE_HEADER`).
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

#: The speaking rates the engines accept, slowest and fastest (multipliers of the voice's own).
SPEEDS: Final = (0.5, 2.0)

#: ``hit`` when the audio came from the cache, ``miss`` when it was synthesized for this request.
CACHE_HEADER: Final = "X-Cache"
#: The body's sample rate in Hz.
SAMPLE_RATE_HEADER: Final = "X-Sample-Rate"
#: The voice id that spoke.
VOICE_HEADER: Final = "X-Voice"


class SynthesizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        description="What to say; normalized for speech (numbers, prices, dates, phones)."
    )
    voice: str | None = Field(
        None, description="A voice id from GET /v1/voices; default: TTS_VOICE."
    )
    language: str | None = Field(
        None,
        pattern=r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$",
        description='The call\'s language ("ru", "en-US"): the voice that speaks it, and the '
        "normalizer of that language; a language the gateway has no voice for is refused (404 "
        "voice_missing, naming the voice to fetch). Without it and without voice, Cyrillic "
        "text is Russian and any other text the default voice's.",
        max_length=35,
    )
    sample_rate: Literal[8000, 16000] = Field(16000, description="Output rate: the call's rate.")
    format: Literal["pcm_s16le", "wav"] = Field("pcm_s16le", description="Raw L16 or a WAV stream.")
    speed: float = Field(1.0, ge=SPEEDS[0], le=SPEEDS[1], description="Speaking rate multiplier.")
