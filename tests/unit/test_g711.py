"""G.711 codecs against the reference coder and the ITU-T table values."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from callkit.audio import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from callkit.errors import InvalidInput

with warnings.catch_warnings():
    # audioop (removed in 3.13) is Python's C port of the Sun reference G.711 coder.
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

ALL_PCM = np.arange(-32768, 32768, dtype="<i2").tobytes()
ALL_CODES = bytes(range(256))


def test_ulaw_encoder_matches_reference_for_every_16bit_value() -> None:
    assert ulaw_encode(ALL_PCM) == audioop.lin2ulaw(ALL_PCM, 2)


def test_alaw_encoder_matches_reference_for_every_16bit_value() -> None:
    assert alaw_encode(ALL_PCM) == audioop.lin2alaw(ALL_PCM, 2)


@pytest.mark.parametrize(
    ("decode", "reference"),
    [(ulaw_decode, audioop.ulaw2lin), (alaw_decode, audioop.alaw2lin)],
    ids=["ulaw", "alaw"],
)
def test_decoders_match_reference_for_every_code(decode, reference) -> None:
    assert decode(ALL_CODES) == reference(ALL_CODES, 2)


# Values from the G.711 µ-law table: code -> decoded linear value (16-bit scale).
ULAW_TABLE = {
    0xFF: 0,
    0x7F: 0,
    0x80: 32124,
    0x00: -32124,
    0xEF: 132,
    0xDF: 396,
    0x8F: 16764,
    0xFE: 8,
}
ALAW_TABLE = {0xD5: 8, 0x55: -8, 0xAA: 32256, 0x2A: -32256, 0xC5: 264, 0x85: 4224, 0xFA: 1008}


@pytest.mark.parametrize(("code", "linear"), ULAW_TABLE.items())
def test_ulaw_table_values(code: int, linear: int) -> None:
    assert np.frombuffer(ulaw_decode(bytes([code])), "<i2")[0] == linear


@pytest.mark.parametrize(("code", "linear"), ALAW_TABLE.items())
def test_alaw_table_values(code: int, linear: int) -> None:
    assert np.frombuffer(alaw_decode(bytes([code])), "<i2")[0] == linear


def test_ulaw_code_round_trip_is_identity_except_negative_zero() -> None:
    back = ulaw_encode(ulaw_decode(ALL_CODES))
    differing = [c for c in range(256) if back[c] != c]
    assert differing == [0x7F]  # -0 decodes to 0, which encodes as +0 (0xFF)


def test_alaw_code_round_trip_is_identity() -> None:
    assert alaw_encode(alaw_decode(ALL_CODES)) == ALL_CODES


@pytest.mark.parametrize(
    ("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)]
)
def test_speech_level_signal_survives_with_telephone_quality(encode, decode) -> None:
    t = np.arange(8000) / 8000
    tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    back = np.frombuffer(decode(encode(tone.tobytes())), "<i2").astype(float)
    noise = back - tone
    snr_db = 10 * np.log10(np.mean(tone.astype(float) ** 2) / np.mean(noise**2))
    assert snr_db > 33  # G.711 gives ~38 dB SQNR for a loud tone


def test_odd_byte_count_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="even number of bytes"):
        ulaw_encode(b"\x00\x01\x02")
