"""Answering-machine detection on an outbound call: a person, a machine, or not known in time.

Fed, on the call's audio timeline (ms since the answer; a frame's time is where it ends, as the
turn-taking counts it), whether each 20 ms frame carries the callee's own voice, the
recognizer's partial and final transcripts, and mod_avmd's beep. A person answers briefly
("Hello?", "Yes, speaking") and waits; a machine talks on, says what it is ("leave a message",
"the person you're calling is using a screening service") or beeps. So: a short first utterance
ended by a pause is a person; a long utterance, many words, a machine's phrase or a beep are a
machine. A person taken for a machine hears a message instead of a conversation, so every
threshold leans towards "human" and phrases a person says when answering ("I can't talk right
now") are kept out of the lists. After a machine verdict the detector also says when to leave
the message: at the beep, or once the greeting has gone quiet.

Pure: no clock and no I/O, so it is table-tested; the bridge feeds it and acts on its answers.
The phrase lists are ``prompts/amd.json`` (JSON, like ``prompts/bridge.json``: the bridge has
no YAML parser).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from callkit.errors import ConfigError

__all__ = [
    "CUES",
    "DEFAULT_PHRASES_FILE",
    "FRAME_MS",
    "AmdConfig",
    "AnsweredBy",
    "AnsweringMachineDetector",
    "MachinePhrases",
    "Verdict",
    "load_default_phrases",
    "load_phrases",
]

FRAME_MS = 20
AnsweredBy = Literal["human", "machine", "unknown"]
CUES = (
    "beep",
    "phrase",
    "screener",
    "long_greeting",
    "many_words",
    "short_greeting",
    "reply_to_prompt",
    "timeout",
    "late_beep",  # the turn-taking core's: a beep after a person's verdict (a short greeting)
    "hung_up",  # the turn-taking core's: the call ended before any verdict
    "late_phrase",  # the turn-taking core's: a machine's phrase recognized after a person's verdict
)
#: A beep this soon after a person's verdict turns it into a machine's: a box whose greeting
#: was only a name ("Sarah Connor.") beeps a moment after it. Later, or in the middle of the
#: callee's speech (a tone detector can fire on a voice), it is no box.
LATE_BEEP_MS = 6000
#: Callee speech running this long when the beep is reported: the "beep" was in their voice.
BEEP_IN_SPEECH_MS = 1000
#: Relative to the working directory, like the bridge's own phrases (``prompts/bridge.json``):
#: the repository in development, ``/app`` in the image, where compose mounts ``./prompts``.
DEFAULT_PHRASES_FILE = Path("prompts/amd.json")
CATEGORIES = ("machine", "screener", "beep_coming")


@dataclass(frozen=True)
class AmdConfig:
    # No voice yet this long after the answer: the shell says one short line ("Hello?"). Many
    # people wait for the caller to speak first; a machine may start its greeting late.
    prompt_after_ms: int = 1500
    # No verdict by then: "unknown", and the call goes on as with a person.
    max_wait_ms: int = 6000
    # Silence that ends an utterance: people who said "Hello?" wait longer than this for an
    # answer; pauses between a greeting's phrases are mostly shorter.
    pause_ms: int = 700
    # A first utterance no longer than this, ended by a pause: a person ("Hello, this is Mary"
    # is about 1.2 s; a machine's greeting is rarely under 2.5 s).
    person_max_speech_ms: int = 1800
    # A greeting longer than person_max_speech_ms but short of a machine's, with no machine
    # phrase: a person once this much silence follows it, since a machine would have beeped or
    # gone on by then ("Hello, Smith residence, Mary speaking" and waiting).
    person_pause_ms: int = 1500
    # An utterance (pauses shorter than pause_ms inside) lasting this long: a machine; a
    # person's longest usual opening ("Hello, yes, this is Mary Smith, who's calling?") is ~3 s.
    machine_speech_ms: int = 3500
    # An utterance whose transcript has this many words: a machine. Ten is reached by a
    # person's formal self-introduction, twelve is only a few words more of a greeting.
    machine_words: int = 12
    # Machine, no tone announced: silence this long ends its greeting (the message may start).
    greeting_end_ms: int = 1200
    # The greeting announced a tone ("after the beep"): wait this long in silence for it, in
    # case mod_avmd does not hear it.
    beep_wait_ms: int = 4000
    # From the machine verdict: leave the message by then whatever happens (music, a greeting
    # that never pauses, a missed beep).
    max_message_wait_ms: int = 20000

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value <= 0:
                raise ConfigError(
                    f"AmdConfig.{name}: expected a positive number of ms, got {value}"
                )
        if self.person_max_speech_ms >= self.machine_speech_ms:
            raise ConfigError(
                "AmdConfig: person_max_speech_ms must be shorter than machine_speech_ms, got "
                f"{self.person_max_speech_ms} and {self.machine_speech_ms}"
            )
        if self.pause_ms > self.person_pause_ms:
            raise ConfigError(
                "AmdConfig: person_pause_ms cannot be shorter than pause_ms, got "
                f"{self.person_pause_ms} and {self.pause_ms}"
            )


@dataclass(frozen=True)
class Verdict:
    answered_by: AnsweredBy
    cue: str  # one of CUES: what decided it
    # When it was reached, ms since the answer: where the deciding pause or limit ended, even
    # if the call that noticed it came a frame later.
    at_ms: float


@dataclass(frozen=True)
class MachinePhrases:
    """What machines say, per kind; matched as whole words, case and punctuation ignored.

    A phrase that announces a tone is a machine's phrase too, whichever list holds it.
    """

    machine: tuple[str, ...]  # voicemail, answering machines, carrier messages
    screener: tuple[str, ...]  # call-screening assistants asking who calls and why
    beep_coming: tuple[str, ...]  # phrases announcing a tone: the message waits for it


# ---------------------------------------------------------------------------- words

_APOSTROPHES = re.compile("['’ʼ‘`´]")
_WORD = re.compile(r"[^\W_]+")
# Contractions as recognizers write them once the apostrophe is gone, spelled out so that
# "can't", "cant", "cannot" and "can not" (or "you're" and "you are") are the same words.
_SPELLED_OUT = {
    "cant": "can not",
    "cannot": "can not",
    "wont": "will not",
    "dont": "do not",
    "doesnt": "does not",
    "didnt": "did not",
    "isnt": "is not",
    "arent": "are not",
    "wasnt": "was not",
    "werent": "were not",
    "havent": "have not",
    "hasnt": "has not",
    "couldnt": "could not",
    "wouldnt": "would not",
    "shouldnt": "should not",
    "youre": "you are",
    "youve": "you have",
    "youll": "you will",
    "theyre": "they are",
    "weve": "we have",
    "ive": "i have",
    "im": "i am",
    "whos": "who is",
}


def _words(text: str) -> list[str]:
    """The words of ``text`` as said: lower case, no punctuation, "ё" read as "е"."""
    return _WORD.findall(_APOSTROPHES.sub("", text.lower().replace("ё", "е")))


def _spelled(words: list[str]) -> list[str]:
    return [part for w in words for part in _SPELLED_OUT.get(w, w).split()]


def _padded(words: list[str]) -> str:
    """Words space-padded, so a phrase matches as whole words: " tone " is not in " a stone "."""
    return " " + " ".join(words) + " "


def _patterns(phrases: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(_padded(_spelled(_words(p))) for p in phrases if _words(p))


# ---------------------------------------------------------------------------- detector


class AnsweringMachineDetector:
    """One outbound call's detector, from the answer on.

    Verdicts are final: the first one reached is returned by every later ``decide``. Voice and
    transcripts keep being fed after a machine verdict, for ``ready_for_message``.
    """

    def __init__(self, config: AmdConfig, phrases: MachinePhrases) -> None:
        self.config = config
        self._machine = _patterns(phrases.machine + phrases.beep_coming)
        self._screener = _patterns(phrases.screener)
        self._tone = _patterns(phrases.beep_coming)
        self._verdict: Verdict | None = None
        # Voice: the utterance in progress (gaps under pause_ms bridged) and the last voice.
        self._onset: float | None = None
        self._voice_end: float | None = None
        self._utterances = 0  # utterances ended by a pause
        self._last_after_prompt = False  # the last ended utterance began after the short line
        # The shell's short line.
        self._prompt_due = False
        self._prompt_end: float | None = None
        # Transcripts: the words of every final so far, the current partial's, and how many
        # words this utterance has.
        self._finals: list[str] = []
        self._partial: list[str] = []
        self._final_words = 0  # in finals since the current utterance began
        self._partial_words = 0
        self._tone_announced = False
        self._beep_at: float | None = None
        self._ready = False

    def machine_words(self, text: str) -> bool:
        """Whether ``text`` holds a voicemail's or a screener's phrase."""
        heard = _padded(_spelled(_words(text)))
        return any(p in heard for p in self._machine + self._screener)

    # ------------------------------------------------------------------ inputs

    def voice(self, voiced: bool, t_ms: float) -> None:
        """One 20 ms frame ending at ``t_ms``: whether the callee's own voice is in it."""
        if not voiced:
            self._advance(t_ms)
            return
        start = t_ms - FRAME_MS
        self._advance(start)  # the silence before this frame may have ended an utterance
        if self._onset is None:
            self._onset = start
            self._final_words = 0
        self._voice_end = t_ms
        if (
            self._verdict is None
            and not self._replying
            and t_ms - self._onset >= self.config.machine_speech_ms
        ):
            self._reach("machine", "long_greeting", t_ms)
        self._advance(t_ms)

    def transcript(self, text: str, final: bool, t_ms: float) -> None:
        """The recognizer's partial (the current segment so far) or final (the whole segment)."""
        self._advance(t_ms)
        if self._verdict is not None and self._verdict.answered_by != "machine":
            return
        words = _words(text)
        if final:
            self._finals += _spelled(words)
            self._final_words += len(words)
            self._partial, self._partial_words = [], 0
        else:
            self._partial, self._partial_words = _spelled(words), len(words)
        # Everything heard so far: a phrase split over two segments is still found.
        heard = _padded(self._finals + self._partial)
        if any(p in heard for p in self._tone):
            self._tone_announced = True
        if self._verdict is not None:
            return
        if any(p in heard for p in self._screener):
            self._reach("machine", "screener", t_ms)
        elif any(p in heard for p in self._machine):
            self._reach("machine", "phrase", t_ms)
        elif (
            not self._replying
            and self._final_words + self._partial_words >= self.config.machine_words
        ):
            self._reach("machine", "many_words", t_ms)

    def beep(self, t_ms: float) -> None:
        """mod_avmd heard a voicemail beep: a machine, and its recording starts now."""
        self._advance(t_ms)
        if self._beep_at is None:
            self._beep_at = t_ms
        if self._verdict is None:
            self._reach("machine", "beep", t_ms)

    def prompted(self, t_ms: float) -> None:
        """The shell said its short line; it ended at ``t_ms``."""
        self._advance(t_ms)
        self._prompt_due = True
        self._prompt_end = t_ms

    @property
    def _replying(self) -> bool:
        """The callee's current words began after the short line: an answer to it. A person
        who answers "Hello?" with their whole story is still a person; only a machine's
        phrase makes such words a machine."""
        return (
            self._onset is not None
            and self._prompt_end is not None
            and (self._onset >= self._prompt_end)
        )

    # ------------------------------------------------------------------ answers

    def due_prompt(self, t_ms: float) -> bool:
        """True once, when the short line should be said: no voice for ``prompt_after_ms``
        since the answer and no verdict."""
        self._advance(t_ms)
        if (
            self._prompt_due
            or self._verdict is not None
            or self._voice_end is not None
            or self._finals
            or self._partial  # the recognizer heard words the voice detector missed
            or t_ms < self.config.prompt_after_ms
        ):
            return False
        self._prompt_due = True
        return True

    def decide(self, t_ms: float) -> Verdict | None:
        """The verdict once reached (the same one on every later call), else None."""
        self._advance(t_ms)
        return self._verdict

    def ready_for_message(self, t_ms: float) -> bool:
        """After a machine verdict: whether the message may start now. At the beep; else once
        the greeting is quiet for ``greeting_end_ms`` (``beep_wait_ms`` when it announced a
        tone); else ``max_message_wait_ms`` after the verdict. Once True, always True."""
        self._advance(t_ms)
        verdict = self._verdict
        if verdict is None or verdict.answered_by != "machine":
            return False
        if self._ready:
            return True
        config = self.config
        quiet_since = self._voice_end if self._voice_end is not None else verdict.at_ms
        quiet_for = config.beep_wait_ms if self._tone_announced else config.greeting_end_ms
        self._ready = (
            (self._beep_at is not None and self._beep_at <= t_ms)
            or t_ms - verdict.at_ms >= config.max_message_wait_ms
            or t_ms - quiet_since >= quiet_for
        )
        return self._ready

    # ------------------------------------------------------------------ timed rules

    def _advance(self, t_ms: float) -> None:
        """Apply what the passing of time decides, in the order it happens, up to ``t_ms``."""
        config = self.config
        # 1. An utterance followed by pause_ms of silence has ended.
        if self._onset is not None and self._voice_end is not None:
            ends = self._voice_end + config.pause_ms
            if ends <= t_ms:
                if self._verdict is None and ends > config.max_wait_ms and not self._replying:
                    self._reach("unknown", "timeout", config.max_wait_ms)
                self._end_utterance(self._onset, self._voice_end, ends)
        # 2. A greeting a person could have said, then a longer silence: a person waiting.
        if self._verdict is None and self._onset is None and self._voice_end is not None:
            settles = self._voice_end + config.person_pause_ms
            if settles <= min(t_ms, config.max_wait_ms):
                cue = "reply_to_prompt" if self._last_after_prompt else "short_greeting"
                self._reach("human", cue, settles)
        # 3. Nothing decided in time (a callee answering the short line is heard out first).
        if self._verdict is None and t_ms >= config.max_wait_ms and not self._replying:
            self._reach("unknown", "timeout", config.max_wait_ms)
        elif self._verdict is None and t_ms >= 2 * config.max_wait_ms:
            self._reach("unknown", "timeout", t_ms)  # a reply that never pauses

    def _end_utterance(self, onset: float, voice_end: float, ends: float) -> None:
        self._onset = None
        self._utterances += 1
        after_prompt = self._prompt_end is not None and onset >= self._prompt_end
        self._last_after_prompt = after_prompt
        if self._verdict is not None:
            return
        if voice_end - onset > self.config.person_max_speech_ms and not after_prompt:
            return
        # A machine's phrase in it would have decided already.
        if after_prompt:
            self._reach("human", "reply_to_prompt", ends)
        elif self._utterances == 1:
            self._reach("human", "short_greeting", ends)

    def _reach(self, answered_by: AnsweredBy, cue: str, at_ms: float) -> None:
        if self._verdict is None:
            self._verdict = Verdict(answered_by, cue, at_ms)


# ---------------------------------------------------------------------------- phrase file


def load_phrases(path: Path, language: str) -> MachinePhrases:
    """The phrase lists of ``language`` (``ru-RU`` reads ``ru``); a file without them is refused
    at start-up, not found out on the first answered call."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"{path}: the answering-machine phrases cannot be read ({exc.strerror}); expected "
            "prompts/amd.json"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected an object of languages")
    languages = {str(k).lower(): v for k, v in data.items() if k != "about"}
    wanted = language.strip().lower().replace("_", "-")
    for candidate in (wanted, wanted.split("-")[0]):
        if candidate in languages:
            lists = languages[candidate]
            break
    else:
        raise ConfigError(
            f"{path}: no answering-machine phrases for the language {language!r}; the file has "
            f"{', '.join(sorted(languages)) or 'none'}"
        )
    if not isinstance(lists, dict) or set(lists) - set(CATEGORIES):
        raise ConfigError(f"{path}: {candidate}: expected lists named {', '.join(CATEGORIES)}")
    for category in CATEGORIES:
        phrases = lists.get(category)
        if not isinstance(phrases, list) or not phrases:
            raise ConfigError(f"{path}: {candidate}.{category}: expected a list of phrases")
        for phrase in phrases:
            if not isinstance(phrase, str) or not _words(phrase):
                raise ConfigError(f"{path}: {candidate}.{category}: {phrase!r} is no phrase")
    return MachinePhrases(
        machine=tuple(lists["machine"]),
        screener=tuple(lists["screener"]),
        beep_coming=tuple(lists["beep_coming"]),
    )


def load_default_phrases(language: str) -> MachinePhrases:
    """``prompts/amd.json`` from the working directory, like the bridge's other phrases."""
    return load_phrases(DEFAULT_PHRASES_FILE, language)
