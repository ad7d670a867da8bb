"""mod_audio_fork's text messages, both ways: the metadata frame, the server's commands, the marks.

The switch's side (what the module sends and does) and the server's side (the bridge) share
these, the way :mod:`callkit.esl` serves both ends of the Event Socket:

- switch → server: the first TEXT frame is the dialplan's metadata, verbatim (:func:`parse_metadata`
  reads it; ``sampleRate`` says the rate of the binary L16 frames that follow, 16000 when absent);
  in streaming mode (the jambonz build) each mark comes back once its audio played out or was
  cleared, as the module's own text (:func:`mark_reply` writes it, :func:`parse_mark_reply`
  reads it);
- server → switch: ``playAudio`` (a file to write; the module fires ``mod_audio_fork::play_audio``
  with the JSON :class:`PlayAudioEvent` as its body and plays nothing), ``killAudio``, ``mark``,
  ``clearMarks`` (:func:`encode` writes them); :func:`read_command` is how the module reads any
  text frame: by ``type``, ``json`` when there is none, invalid JSON dropped.

Binary frames are L16 audio and never pass through here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from callkit.errors import InvalidInput, UnsupportedFormat
from callkit.events import validation_problems

SUBPROTOCOL = "audio.drachtio.org"
#: The module copies at most this many characters of the metadata.
MAX_METADATA_CHARS = 8191
#: Fork rates the call path accepts (the ``<8k|16k>`` argument of ``uuid_audio_fork start``).
FORK_RATES_HZ = (8000, 16000)


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# ---------------------------------------------------------------- switch -> server


class ForkMetadata(BaseModel):
    """The first text frame: the JSON object the dialplan wrote, with the fields the bridge reads.

    Every other key is kept as the dialplan wrote it (``values``); the module checks nothing.
    """

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    call_id: str | None = Field(None, alias="callId", description="The channel's uuid.")
    sample_rate: Literal[8000, 16000] = Field(
        16000,
        alias="sampleRate",
        description="Rate of the fork's L16 frames (and of the streamed playback), in Hz.",
    )

    @property
    def values(self) -> dict[str, Any]:
        """The dialplan's other keys (direction, caller, callee, language...)."""
        return dict(self.model_extra or {})


def parse_metadata(text: str) -> ForkMetadata:
    """The metadata frame. Text that is not a JSON object is kept whole under ``raw``; a rate the
    call path cannot take raises :class:`UnsupportedFormat` (the frames would be misread)."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError):  # too deep to parse is no JSON either
        data = None
    if not isinstance(data, dict):
        return ForkMetadata.model_validate({"raw": text[:200]})
    rate = data.get("sampleRate", 16000)
    if isinstance(rate, bool) or rate not in FORK_RATES_HZ:
        raise UnsupportedFormat(
            f"the fork's sampleRate must be one of {FORK_RATES_HZ}, got {str(rate)[:20]!r}"
        )
    data["sampleRate"] = int(rate)
    try:
        return ForkMetadata.model_validate(data)
    except ValidationError:
        # A callId that is no string costs the callId, not the call.
        data.pop("callId", None)
        return ForkMetadata.model_validate(data)


class MarkReply(_Message):
    """A mark the module reports: its audio was played out, or cleared by ``killAudio``."""

    name: str
    event: Literal["playout", "cleared"]


def mark_reply(name: str, event: Literal["playout", "cleared"]) -> str:
    """The module's exact text (``lws_glue.cpp``; spaces included, the name unescaped)."""
    return '{"type": "mark", "data": {"name":"' + name + '", "event": "' + event + '"}}'


def parse_mark_reply(text: str) -> MarkReply | None:
    """The mark a text frame from the module reports; None for any other frame."""
    received = read_command(text)
    if received is None or received.kind != "mark" or not isinstance(received.data, dict):
        return None
    try:
        return MarkReply.model_validate(received.data)
    except ValidationError:
        return None


class PlayAudioEvent(BaseModel):
    """Body of ``mod_audio_fork::play_audio``: the ``playAudio`` data without its audio, plus the
    path the module wrote it to (absent when the content type was not one it writes)."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    file: str | None = None
    text_content: str | None = Field(None, alias="textContent")


def play_audio_event_body(data: dict[str, Any]) -> str:
    """The event body as the module writes it: unformatted cJSON of the data."""
    return json.dumps(data, separators=(",", ":"))


def parse_play_audio_event(body: str) -> PlayAudioEvent:
    try:
        return PlayAudioEvent.model_validate_json(body)
    except ValidationError as exc:
        raise InvalidInput(
            f"mod_audio_fork::play_audio body is not the playAudio data: {validation_problems(exc)}"
        ) from None


# ---------------------------------------------------------------- server -> switch


class PlayAudioData(_Message):
    audio_content_type: Literal["raw", "wave", "wav"] = Field(alias="audioContentType")
    sample_rate: Literal[8000, 16000] | None = Field(
        None, alias="sampleRate", description="Rate of raw audio (.r8 / .r16 files)."
    )
    audio_content: str = Field(alias="audioContent", description="The audio, base64.")
    text_content: str | None = Field(
        None, alias="textContent", description="Returned in the play_audio event."
    )


class PlayAudio(_Message):
    """Write this audio to a file and say where (the module plays nothing)."""

    type: Literal["playAudio"] = "playAudio"
    data: PlayAudioData


class KillAudio(_Message):
    """Stop the file playing now; in streaming mode also drop the buffered audio and its marks."""

    type: Literal["killAudio"] = "killAudio"


class MarkData(_Message):
    name: str


class Mark(_Message):
    """Streaming mode: report when the audio sent so far has been played."""

    type: Literal["mark"] = "mark"
    data: MarkData


class ClearMarks(_Message):
    type: Literal["clearMarks"] = "clearMarks"


Command = PlayAudio | KillAudio | Mark | ClearMarks


def encode(message: Command) -> str:
    return message.model_dump_json(by_alias=True, exclude_none=True)


def mark(name: str) -> str:
    return encode(Mark(data=MarkData(name=name)))


@dataclass(frozen=True, slots=True)
class Received:
    """A text frame as the module dispatches it (``parser.cpp``)."""

    kind: str  # the ``type``; ``json`` when there is none
    data: Any  # ``data`` of the message, None when absent
    text: str  # the frame itself (relayed whole for ``json``)


def read_command(text: str) -> Received | None:
    """How the module reads a text frame; None when it drops it (not a JSON object)."""
    try:
        message = json.loads(text)
    except (json.JSONDecodeError, RecursionError):  # too deep to parse is no JSON either
        return None
    if not isinstance(message, dict):
        return None
    kind = message.get("type", "json")
    return Received(str(kind), message.get("data"), text)


def mark_name(data: Any) -> str:
    """The name of a ``mark`` command's data, as the module takes it (empty when missing)."""
    return str((data if isinstance(data, dict) else {}).get("name", ""))
