"""A call the bridge has no room for: the busy phrase, then a clean hang-up.

When ``BRIDGE_MAX_CALLS`` calls are in progress, a new fork is still accepted, but only to say
that every line is busy and to hang up with ``uuid_kill <uuid> NORMAL_CLEARING`` (the call was
answered, so it ends normally; ``bridge_calls_refused_total`` tells it apart). Spreading one more
call over a CPU stack that is already full would slow every call in progress; refusing it costs
them nothing. The phrase is a fixed one of ``prompts/bridge.json``, which the TTS gateway
prerenders, so its audio comes out of the cache without a synthesis. The refused call never
reaches the policy engine or the ASR gateway, and has no recording and no turn-taking.

1. Say the phrase, in the call's direction (an inbound caller is asked to call back, an outbound
   callee is told the clinic will) and locale, at the fork's rate: in streaming mode as L16
   frames and a mark, in file mode as a ``playAudio`` file played when the module has written it.
2. Wait until it has played (the mark reported, or its length passed in file mode), or the
   caller hangs up first.
3. Hang up and close the fork.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect

from callkit import audiofork
from callkit.errors import AgentError, ConfigError, InvalidInput
from fs_bridge.settings import BridgeSettings

__all__ = ["BusyLine", "BusyServices", "Phrases", "load_phrases"]

log = logging.getLogger("fs_bridge.busy")
DIRECTIONS = ("inbound", "outbound")
MARK = "busy"
#: Beyond the phrase's own length: the module's playout buffer and the mark's trip back.
PLAYOUT_MARGIN_S = 2.0
#: Beyond a played file's length: the switch starting the playback.
FILE_MARGIN_S = 0.5
#: How long the module may take to write the file mode's playAudio file.
FILE_WAIT_S = 5.0
#: The longest a refused call is held, whatever the TTS gateway or the module do.
MAX_BUSY_S = 30.0


@dataclass(frozen=True)
class Phrases:
    """The bridge's own phrases: the busy phrase per direction and locale, and the short line
    said to a callee who is silent before the answering-machine verdict."""

    busy: Mapping[str, Mapping[str, str]]  # direction -> locale -> text
    language: str  # the bridge's default; always has an inbound busy phrase
    listening: Mapping[str, str] = field(default_factory=dict)  # locale -> text
    backchannels: Mapping[str, frozenset[str]] = field(default_factory=dict)  # locale -> words
    #: locale -> endings a sentence does not stop on, as word sequences
    unfinished: Mapping[str, frozenset[tuple[str, ...]]] = field(default_factory=dict)

    def backchannel_words(self, locale: str | None) -> frozenset[str]:
        """The listener's-feedback words of the call's locale, else the bridge's."""
        for candidate in _locales(locale, self.language):
            if candidate in self.backchannels:
                return self.backchannels[candidate]
        return frozenset()

    def unfinished_endings(self, locale: str | None) -> frozenset[tuple[str, ...]]:
        """The endings of unfinished words in the call's locale, else the bridge's."""
        for candidate in _locales(locale, self.language):
            if candidate in self.unfinished:
                return self.unfinished[candidate]
        return frozenset()

    def listening_text(self, locale: str | None) -> str | None:
        """The listening line in the call's locale, else the bridge's; None: stay silent."""
        for candidate in _locales(locale, self.language):
            if candidate in self.listening:
                return self.listening[candidate]
        return None

    def busy_text(self, direction: str, locale: str | None) -> str:
        """The busy phrase for the call: its direction's, else the inbound one; its locale's
        (``ru-RU`` is ``ru``), else the bridge's default language's."""
        return self.busy_phrase(direction, locale)[0]

    def busy_phrase(self, direction: str, locale: str | None) -> tuple[str, str]:
        """:meth:`busy_text` and the language it is in (the voice to say it with)."""
        texts = self.busy.get(direction) or self.busy["inbound"]
        for candidate in _locales(locale, self.language):
            if candidate in texts:
                return texts[candidate], candidate.split("-")[0]
        return self.busy["inbound"][self.language], self.language


def _locales(locale: str | None, default: str) -> list[str]:
    wanted = (locale or "").strip().lower().replace("_", "-")
    return [c for c in (wanted, wanted.split("-")[0], default.lower()) if c]


def load_phrases(path: Path, language: str) -> Phrases:
    """Read the phrase file; a file that cannot say the busy phrase in ``language`` to an
    inbound caller is refused at start-up, not found out when the bridge is full."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"{path}: the bridge's phrases cannot be read ({exc.strerror}); set "
            "BRIDGE_PHRASES_FILE to prompts/bridge.json"
        ) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    busy = data.get("busy") if isinstance(data, dict) else None
    if not isinstance(busy, dict):
        raise ConfigError(
            f"{path}: expected an object with 'busy': an object of 'inbound' and 'outbound'"
        )
    texts: dict[str, dict[str, str]] = {}
    for direction, entry in busy.items():
        if direction not in DIRECTIONS:
            raise ConfigError(f"{path}: busy.{direction}: expected one of {', '.join(DIRECTIONS)}")
        say = entry.get("say") if isinstance(entry, dict) else None
        if not isinstance(say, dict):
            raise ConfigError(f"{path}: busy.{direction} needs 'say' with a text per locale")
        texts[direction] = {}
        for locale, text in say.items():
            if not isinstance(text, str) or not text.strip() or "{" in text:
                raise ConfigError(
                    f"{path}: busy.{direction}.say.{locale}: expected a fixed text (no "
                    "placeholders, which would not be prerendered)"
                )
            texts[direction][str(locale).lower()] = text.strip()
    default = language.lower()
    if default not in texts.get("inbound", {}):
        raise ConfigError(
            f"{path}: busy.inbound.say has no text for the bridge's language {default!r} "
            "(BRIDGE_LANGUAGE)"
        )
    listening: dict[str, str] = {}
    entry = data.get("listening")
    if entry is not None:
        say = entry.get("say") if isinstance(entry, dict) else None
        if not isinstance(say, dict):
            raise ConfigError(f"{path}: listening needs 'say' with a text per locale")
        for locale, text in say.items():
            if not isinstance(text, str) or not text.strip() or "{" in text:
                raise ConfigError(f"{path}: listening.say.{locale}: expected a fixed text")
            listening[str(locale).lower()] = text.strip()
    return Phrases(
        busy=texts,
        language=default,
        listening=listening,
        backchannels=_backchannels(path, data.get("backchannels")),
        unfinished=_unfinished(path, data.get("unfinished")),
    )


def _unfinished(path: Path, entry: object) -> dict[str, frozenset[tuple[str, ...]]]:
    """``unfinished.endings``: per locale, the endings (lower case, one or more words) that
    leave a sentence unfinished."""
    if entry is None:
        return {}
    endings = entry.get("endings") if isinstance(entry, dict) else None
    if not isinstance(endings, dict):
        raise ConfigError(f"{path}: unfinished needs 'endings' with a list of endings per locale")
    found: dict[str, frozenset[tuple[str, ...]]] = {}
    for locale, items in endings.items():
        if not isinstance(items, list) or not all(isinstance(e, str) and e.split() for e in items):
            raise ConfigError(
                f"{path}: unfinished.endings.{locale}: expected a list of words or phrases"
            )
        found[str(locale).lower()] = frozenset(tuple(e.lower().split()) for e in items)
    return found


def _backchannels(path: Path, entry: object) -> dict[str, frozenset[str]]:
    """``backchannels.words``: per locale, the words (lower case) of a listener's feedback."""
    if entry is None:
        return {}
    words = entry.get("words") if isinstance(entry, dict) else None
    if not isinstance(words, dict):
        raise ConfigError(f"{path}: backchannels needs 'words' with a list of words per locale")
    found: dict[str, frozenset[str]] = {}
    for locale, items in words.items():
        if not isinstance(items, list) or not all(
            isinstance(w, str) and w.strip() and " " not in w.strip() for w in items
        ):
            raise ConfigError(
                f"{path}: backchannels.words.{locale}: expected a list of single words"
            )
        found[str(locale).lower()] = frozenset(w.strip().lower() for w in items)
    return found


class Speech(Protocol):
    def speak(
        self, text: str, sample_rate: int = 16000, language: str | None = None
    ) -> AsyncIterator[bytes]: ...


class BusyServices(Protocol):
    """What a refused call needs of the bridge: its settings, the TTS gateway, the switch."""

    @property
    def settings(self) -> BridgeSettings: ...

    @property
    def tts(self) -> Speech: ...

    async def control(self, command: str, *, slow: bool = True) -> str: ...

    async def playback(self, call_id: str, path: str) -> None: ...


@dataclass
class BusyLine:
    call_id: str
    ws: WebSocket
    services: BusyServices
    phrases: Phrases
    metadata: audiofork.ForkMetadata = field(default_factory=audiofork.ForkMetadata)
    _gone: asyncio.Event = field(default_factory=asyncio.Event)  # the fork closed
    _played: asyncio.Event = field(default_factory=asyncio.Event)  # the mark played out
    _file_ready: asyncio.Event = field(default_factory=asyncio.Event)
    _file: str | None = None

    async def run(self) -> None:
        meta: Mapping[str, Any] = self.metadata.values
        direction = "outbound" if meta.get("direction") == "outbound" else "inbound"
        locale = meta.get("locale") or meta.get("language")
        text, language = self.phrases.busy_phrase(
            direction, locale if isinstance(locale, str) else None
        )
        reader = asyncio.create_task(self._read())
        try:
            async with asyncio.timeout(MAX_BUSY_S):
                await self._say(text, language)
        except TimeoutError:
            log.warning("busy phrase took too long; hanging up", extra={"call_id": self.call_id})
        except AgentError as exc:
            log.warning(
                "busy phrase could not be said; hanging up",
                extra={"call_id": self.call_id, "error": exc.message},
            )
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        await self.services.control(f"uuid_kill {self.call_id} NORMAL_CLEARING")
        with contextlib.suppress(Exception):
            await self.ws.close(1000)

    async def _read(self) -> None:
        """The fork until it closes: the caller's audio is dropped, the mark is noted."""
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text:
                    reply = audiofork.parse_mark_reply(text)
                    if reply is not None and reply.name == MARK:
                        self._played.set()
        except (WebSocketDisconnect, RuntimeError):
            pass
        self._gone.set()

    async def _say(self, text: str, language: str) -> None:
        rate = self.metadata.sample_rate
        streaming = self.services.settings.playback == "stream"
        sent = 0
        chunks: list[bytes] = []
        try:
            async for chunk in self.services.tts.speak(text, rate, language):
                if self._gone.is_set():
                    return
                if streaming:
                    await self.ws.send_bytes(chunk)
                else:
                    chunks.append(chunk)
                sent += len(chunk)
            length_s = sent / 2 / rate
            if streaming:
                await self.ws.send_text(audiofork.mark(MARK))
                await self._until(self._played, length_s + PLAYOUT_MARGIN_S)
                return
            await self._send_file(b"".join(chunks))
        except (WebSocketDisconnect, RuntimeError):
            return  # the caller hung up while the phrase went out
        if await self._until(self._file_ready, FILE_WAIT_S) and self._file:
            await self.services.playback(self.call_id, self._file)
            await self._until(None, length_s + FILE_MARGIN_S)

    async def _send_file(self, pcm: bytes) -> None:
        play = audiofork.PlayAudio(
            data=audiofork.PlayAudioData(
                audio_content_type="raw",
                sample_rate=self.metadata.sample_rate,
                audio_content=base64.b64encode(pcm).decode(),
                text_content=MARK,
            )
        )
        await self.ws.send_text(audiofork.encode(play))

    def on_play_audio(self, body: str) -> None:
        """ESL mod_audio_fork::play_audio: the module wrote the phrase's file."""
        try:
            event = audiofork.parse_play_audio_event(body)
        except InvalidInput:
            return
        if event.file and event.text_content == MARK:
            self._file = event.file
            self._file_ready.set()

    async def _until(self, done: asyncio.Event | None, timeout_s: float) -> bool:
        """Wait for ``done`` (None: only the time) unless the fork closes first; True when
        ``done`` happened."""
        waits = [asyncio.ensure_future(self._gone.wait())]
        if done is not None:
            waits.append(asyncio.ensure_future(done.wait()))
        try:
            await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        return done is not None and done.is_set()
