"""RealtimeSTT on the same clips the gateway is measured on; runs in its own virtual environment.

Usage: python compare.py MODEL_DIR SILERO_ONNX CLIPS_DIR OUT.json
Each clip (16 kHz mono WAV) is fed in real time through AudioToTextRecorder.feed_audio; the
script records when the first real-time update and the final text arrived, relative to the
clip's known speech start and end (clips.json), and the process's CPU time per audio second.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
import wave
from pathlib import Path

import numpy as np
from RealtimeSTT import AudioToTextRecorder


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    model, silero, clips_dir, out = sys.argv[1:5]
    meta = json.loads((Path(clips_dir) / "clips.json").read_text())
    updates: list[float] = []
    recorder = AudioToTextRecorder(
        model=model,
        realtime_model_type=model,
        language="en",
        device="cpu",
        compute_type="int8",
        use_microphone=False,
        spinner=False,
        enable_realtime_transcription=True,
        silero_backend="raw_onnx",
        silero_onnx_model_path=silero,
        post_speech_silence_duration=0.5,
        beam_size=1,
        beam_size_realtime=1,
        on_realtime_transcription_update=lambda _text: updates.append(time.perf_counter()),
        level=40,
        no_log_file=True,
    )
    results = []
    for clip in meta:
        with wave.open(str(Path(clips_dir) / clip["file"])) as w:
            audio = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        updates.clear()
        cpu0 = cpu_seconds()
        start = time.perf_counter()

        def feed(samples: np.ndarray = audio, t0: float = start) -> None:
            for i in range(0, len(samples), 512):
                time.sleep(max(0.0, t0 + i / 16000 - time.perf_counter()))
                recorder.feed_audio(samples[i : i + 512].tobytes())

        feeder = threading.Thread(target=feed)
        feeder.start()
        text = recorder.text()
        final_at = time.perf_counter()
        feeder.join()
        results.append(
            {
                "file": clip["file"],
                "text": text,
                "final_after_end_s": final_at - start - clip["speech_end_s"],
                "first_update_after_start_s": (updates[0] - start - clip["speech_start_s"])
                if updates
                else None,
                "cpu_s": cpu_seconds() - cpu0,
                "audio_s": len(audio) / 16000,
            }
        )
    Path(out).write_text(json.dumps(results, indent=1))
    try:
        recorder.shutdown()
    except Exception:
        pass


if __name__ == "__main__":
    main()
