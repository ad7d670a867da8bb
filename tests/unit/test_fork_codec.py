"""mod_audio_fork's messages as the bridge and the emulated switch share them, and the fork's
binary stream cut into frames: a message ending inside a stereo sample, an 8 kHz fork."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from callkit import audiofork
from callkit.errors import InvalidInput, UnsupportedFormat
from fs_bridge.fork_audio import ForkAudio


def test_the_commands_the_bridge_sends_are_what_the_module_reads() -> None:
    play = audiofork.PlayAudio(
        data=audiofork.PlayAudioData(
            audio_content_type="raw",
            sample_rate=8000,
            audio_content=base64.b64encode(b"\x01\x00").decode(),
            text_content="s1",
        )
    )
    assert json.loads(audiofork.encode(play)) == {
        "type": "playAudio",
        "data": {
            "audioContentType": "raw",
            "sampleRate": 8000,
            "audioContent": "AQA=",
            "textContent": "s1",
        },
    }
    assert audiofork.encode(audiofork.KillAudio()) == '{"type":"killAudio"}'
    for text, kind, data in [
        (audiofork.encode(play), "playAudio", play.model_dump(by_alias=True)["data"]),
        (audiofork.encode(audiofork.KillAudio()), "killAudio", None),
        (audiofork.mark("s2"), "mark", {"name": "s2"}),
        (audiofork.encode(audiofork.ClearMarks()), "clearMarks", None),
    ]:
        received = audiofork.read_command(text)
        assert received is not None
        assert (received.kind, received.data) == (kind, data)
    assert audiofork.mark_name({"name": "s2"}) == "s2"
    assert audiofork.mark_name("garbage") == ""


@pytest.mark.parametrize(
    ("text", "kind"),
    [('{"note":"no type"}', "json"), ('{"type":"transcription","data":{}}', "transcription")],
)
def test_a_frame_without_a_type_is_json_as_the_module_has_it(text: str, kind: str) -> None:
    received = audiofork.read_command(text)
    assert received is not None
    assert received.kind == kind
    assert received.text == text


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '"a string"'])
def test_frames_the_module_drops(text: str) -> None:
    assert audiofork.read_command(text) is None


def test_marks_come_back_in_the_modules_own_text_and_are_read_back() -> None:
    text = audiofork.mark_reply("s3", "playout")
    assert text == '{"type": "mark", "data": {"name":"s3", "event": "playout"}}'
    assert audiofork.parse_mark_reply(text) == audiofork.MarkReply(name="s3", event="playout")
    cleared = audiofork.parse_mark_reply(audiofork.mark_reply("s4", "cleared"))
    assert cleared is not None
    assert cleared.event == "cleared"
    assert audiofork.parse_mark_reply('{"type":"mark","data":{"name":"x"}}') is None  # no event
    assert audiofork.parse_mark_reply('{"type":"killAudio"}') is None


def test_the_play_audio_event_body_round_trips() -> None:
    body = audiofork.play_audio_event_body(
        {"audioContentType": "raw", "textContent": "s1", "file": "/tmp/u_0.tmp.r8"}
    )
    assert body == '{"audioContentType":"raw","textContent":"s1","file":"/tmp/u_0.tmp.r8"}'
    event = audiofork.parse_play_audio_event(body)
    assert (event.file, event.text_content) == ("/tmp/u_0.tmp.r8", "s1")
    with pytest.raises(InvalidInput):
        audiofork.parse_play_audio_event('{"file": 3}')


@pytest.mark.parametrize(
    ("text", "rate", "values"),
    [
        ('{"callId":"u1","caller":"+1555","sampleRate":8000}', 8000, {"caller": "+1555"}),
        ('{"callId":"u1","language":"ru"}', 16000, {"language": "ru"}),  # the dialplan's 16k
        ('{"callId":7,"sampleRate":16000.0}', 16000, {}),  # a bad callId costs the callId
        ("not json at all", 16000, {"raw": "not json at all"}),
    ],
)
def test_the_metadata_gives_the_forks_rate(text: str, rate: int, values: dict[str, str]) -> None:
    metadata = audiofork.parse_metadata(text)
    assert metadata.sample_rate == rate
    assert metadata.values == values


@pytest.mark.parametrize("rate", ["24000", "16k", "true"])
def test_a_fork_rate_the_call_path_cannot_take_is_refused(rate: str) -> None:
    with pytest.raises(UnsupportedFormat):
        audiofork.parse_metadata(f'{{"sampleRate": {json.dumps(rate) if rate == "16k" else rate}}}')


# ---------------------------------------------------------------- the fork's binary stream


def stereo(left: np.ndarray, right: np.ndarray) -> bytes:
    out = np.empty(2 * left.size, dtype="<i2")
    out[0::2], out[1::2] = left, right
    return out.tobytes()


def test_a_message_ending_inside_a_stereo_sample_does_not_swap_the_channels() -> None:
    samples = 16000
    caller = np.full(samples, 1000, dtype=np.int16)
    played = np.full(samples, -7, dtype=np.int16)
    data = stereo(caller, played)
    fork = ForkAudio(16000)
    got_caller, got_played, recorded = [], [], b""
    for i in range(0, len(data), 1283):  # neither a whole sample nor a whole frame
        frames = fork.feed(data[i : i + 1283])
        got_caller.append(frames.caller)
        got_played.append(frames.played)
        recorded += frames.stereo
    left, right = np.concatenate(got_caller), np.concatenate(got_played)
    assert left.size == right.size == samples  # every whole frame handed on
    assert set(left.tolist()) == {1000}
    assert set(right.tolist()) == {-7}
    assert recorded == data  # the recording has every byte, in whole samples


def test_an_8_khz_fork_is_resampled_to_16_khz_frames() -> None:
    t = np.arange(8000) / 8000
    caller = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    played = np.zeros(8000, dtype=np.int16)
    fork = ForkAudio(8000)
    data = stereo(caller, played)
    parts = [fork.feed(data[i : i + 640]) for i in range(0, len(data), 640)]  # 20 ms each
    left = np.concatenate([p.caller for p in parts]).astype(np.float64)
    assert all(p.caller.size % 320 == 0 for p in parts)  # whole 20 ms frames at 16 kHz
    assert 15000 <= left.size <= 16000  # a second at 16 kHz, less the filter's delay
    spectrum = np.abs(np.fft.rfft(left))
    assert np.fft.rfftfreq(left.size, 1 / 16000)[np.argmax(spectrum)] == pytest.approx(440, abs=3)
    assert np.abs(np.concatenate([p.played for p in parts])).max() <= 2  # nothing of the caller
    assert b"".join(p.stereo for p in parts) == data  # recorded as it came, at 8 kHz
