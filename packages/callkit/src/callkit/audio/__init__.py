"""Audio building blocks: PCM frames, stereo handling, resampling, G.711 and WAV files."""

from callkit.audio.frames import PcmFrame, SampleAligner, interleave, split_stereo
from callkit.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from callkit.audio.resample import StreamResampler, resample
from callkit.audio.wav import WavWriter, read_wav, wav_header, write_wav

__all__ = [
    "PcmFrame",
    "SampleAligner",
    "StreamResampler",
    "WavWriter",
    "alaw_decode",
    "alaw_encode",
    "interleave",
    "read_wav",
    "resample",
    "split_stereo",
    "ulaw_decode",
    "ulaw_encode",
    "wav_header",
    "write_wav",
]
