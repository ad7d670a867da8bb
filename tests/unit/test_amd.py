"""Answering-machine detection: timelines of answered calls, fed frame by frame as the bridge
feeds them (voice per 20 ms frame, the recognizer's partials and finals, mod_avmd's beep)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from callkit.contracts.outcome import Amd
from callkit.errors import ConfigError
from fs_bridge.amd import (
    CUES,
    DEFAULT_PHRASES_FILE,
    FRAME_MS,
    AmdConfig,
    AnsweringMachineDetector,
    MachinePhrases,
    Verdict,
    load_default_phrases,
    load_phrases,
)

ROOT = Path(__file__).resolve().parents[2]
PHRASES_FILE = ROOT / "prompts" / "amd.json"
PHRASES = {language: load_phrases(PHRASES_FILE, language) for language in ("en", "ru")}
CONFIG = AmdConfig()


@dataclass
class Call:
    """One answered call on the audio timeline; what the detector answered, and when."""

    language: str = "en"
    config: AmdConfig = CONFIG
    prompt_ms: int = 600  # how long the shell's short line takes to say
    phrases: MachinePhrases | None = None
    t: float = 0.0
    verdict: Verdict | None = None
    seen_at: float | None = None  # the first frame decide() returned the verdict on
    ready_at: float | None = None
    prompts: list[float] = field(default_factory=list)
    amd: AnsweringMachineDetector = field(init=False)

    def __post_init__(self) -> None:
        self.amd = AnsweringMachineDetector(self.config, self.phrases or PHRASES[self.language])

    @property
    def answered_by(self) -> str | None:
        return None if self.verdict is None else self.verdict.answered_by

    @property
    def cue(self) -> str | None:
        return None if self.verdict is None else self.verdict.cue

    def speak(self, ms: int, partials: Mapping[int, str] | None = None) -> Call:
        """The callee's voice for ``ms``; each partial arrives ``offset`` ms into the speech."""
        return self._frames(ms, True, partials or {})

    def quiet(self, ms: int, partials: Mapping[int, str] | None = None) -> Call:
        return self._frames(ms, False, partials or {})

    def partial(self, text: str) -> Call:
        self.amd.transcript(text, False, self.t)
        return self._poll()

    def final(self, text: str) -> Call:
        self.amd.transcript(text, True, self.t)
        return self._poll()

    def beep(self) -> Call:
        self.amd.beep(self.t)
        return self._poll()

    def _frames(self, ms: int, voiced: bool, partials: Mapping[int, str]) -> Call:
        start = self.t
        for _ in range(ms // FRAME_MS):
            self.t += FRAME_MS
            self.amd.voice(voiced, self.t)
            if self.t - start in partials:
                self.amd.transcript(partials[int(self.t - start)], False, self.t)
            self._poll()
        return self

    def _poll(self) -> Call:
        verdict = self.amd.decide(self.t)
        if verdict is not None and self.verdict is None:
            self.verdict, self.seen_at = verdict, self.t
        assert verdict is self.verdict  # once reached, the same verdict every time
        if self.amd.due_prompt(self.t):
            self.prompts.append(self.t)
            self.t += self.prompt_ms  # the callee is quiet while the line is said
            self.amd.prompted(self.t)
        if self.ready_at is None and self.amd.ready_for_message(self.t):
            self.ready_at = self.t
        return self


# ------------------------------------------------------------------ people


def test_hello_then_silence_is_a_person_within_the_pause() -> None:
    call = Call().quiet(200).speak(500, {300: "hello"}).final("Hello?").quiet(1000)
    assert call.verdict == Verdict("human", "short_greeting", 700 + CONFIG.pause_ms)
    assert call.verdict.at_ms - 200 <= 1300  # from the first word
    assert call.seen_at == call.verdict.at_ms
    assert call.prompts == []
    assert call.ready_at is None


def test_yes_speaking_is_a_person() -> None:
    call = Call().quiet(400).speak(800, {500: "yes"}).final("Yes, speaking.").quiet(800)
    assert call.verdict == Verdict("human", "short_greeting", 1200 + CONFIG.pause_ms)


def test_a_short_pause_inside_a_greeting_does_not_end_it() -> None:
    # "Hello? ... hello?" with 400 ms between: one utterance of 1.4 s, then the pause.
    call = Call().quiet(200).speak(500).quiet(400).speak(500).quiet(1000)
    assert call.verdict == Verdict("human", "short_greeting", 1600 + CONFIG.pause_ms)


def test_silence_then_the_short_line_then_hello_is_a_reply_to_the_prompt() -> None:
    call = Call().quiet(1500)
    assert call.prompts == [CONFIG.prompt_after_ms]
    assert call.verdict is None  # the line is due, nothing is known yet
    call.quiet(300).speak(500, {300: "hello"}).quiet(1000)
    prompt_end = CONFIG.prompt_after_ms + call.prompt_ms
    assert call.verdict == Verdict("human", "reply_to_prompt", prompt_end + 800 + CONFIG.pause_ms)
    assert call.prompts == [CONFIG.prompt_after_ms]  # said once


def test_a_longer_introduction_is_a_person_once_they_wait_for_an_answer() -> None:
    """Ten words in 2.8 s: too long to be sure at the first pause, short of a machine's."""
    words = "Hello, yes, this is Mary Smith speaking, who's calling please?"
    call = Call().quiet(300).speak(2800, {1500: "hello yes this is mary", 2600: words})
    call.final(words).quiet(2000)
    assert call.verdict == Verdict("human", "short_greeting", 3100 + CONFIG.person_pause_ms)


def test_the_words_of_two_utterances_are_not_added_up() -> None:
    """A person who got no answer says it again: twelve words, but in two utterances."""
    first = "hello this is mary smith's phone"
    call = Call().quiet(300).speak(2000, {1800: first}).quiet(300).final(first).quiet(700)
    call.speak(1000, {900: "hello hello is anybody there hello"}).quiet(2000)
    assert call.verdict == Verdict("human", "short_greeting", 4300 + CONFIG.person_pause_ms)


def test_a_machine_greeting_in_short_pieces_is_not_taken_for_a_person() -> None:
    """Only the first utterance is a person's quick "Hello?"; later short pieces wait."""
    call = Call().quiet(300).speak(2500).quiet(800).speak(600).quiet(1000)
    assert call.verdict is None
    call.beep()
    assert call.verdict == Verdict("machine", "beep", 5200)


PERSON_ANSWERS = [
    ("en", "Hello?"),
    ("en", "Hello, who is this?"),
    ("en", "Who's calling?"),
    ("en", "Yes, speaking."),
    ("en", "Speaking."),
    ("en", "Yeah, hi."),
    ("en", "I can't talk right now, call me later."),
    ("en", "Sorry, I can't take long."),
    ("en", "I'm driving, can you call back?"),
    ("en", "Hello, Smith residence."),
    ("ru", "Алло?"),
    ("ru", "Да, слушаю."),
    ("ru", "Алло, кто это?"),
    ("ru", "Да, по какому вопросу?"),
    ("ru", "Я сейчас не могу говорить, перезвоните позже."),
    ("ru", "Слушаю вас, говорите."),
]


@pytest.mark.parametrize(("language", "words"), PERSON_ANSWERS)
def test_what_people_say_when_they_answer_stays_human(language: str, words: str) -> None:
    # Partial and final both carry the answer, as a streaming recognizer sends them.
    call = Call(language).quiet(300).speak(1700, {800: words}).final(words).quiet(1000)
    assert call.verdict == Verdict("human", "short_greeting", 2000 + CONFIG.pause_ms)


# ------------------------------------------------------------------ machines


def test_a_five_second_greeting_with_a_beep_is_a_machine_ready_at_the_beep() -> None:
    call = Call().quiet(400).speak(5000)
    assert call.verdict == Verdict("machine", "long_greeting", 400 + CONFIG.machine_speech_ms)
    call.quiet(400)
    assert call.ready_at is None  # the greeting is over, the beep has not come
    call.beep().quiet(500)
    assert call.ready_at == 5800


def test_a_phrase_in_a_partial_decides_before_the_greeting_ends() -> None:
    greeting = {2500: "hi you've reached ann I'm not available right now"}
    call = Call().quiet(300).speak(4400, greeting)
    assert call.verdict == Verdict("machine", "phrase", 2800)
    assert call.ready_at is None  # still talking
    call.quiet(CONFIG.greeting_end_ms + 200)
    assert call.ready_at == 4700 + CONFIG.greeting_end_ms


def test_a_greeting_that_announces_the_tone_waits_for_the_beep() -> None:
    greeting = {2000: "hi this is ann leave a message after the tone"}
    call = Call().quiet(300).speak(3000, greeting).quiet(800)
    assert call.verdict == Verdict("machine", "phrase", 2300)
    assert call.ready_at is None  # 800 ms of silence: the tone is still to come
    call.beep().quiet(100)
    assert call.ready_at == 4100


def test_a_tone_that_is_not_heard_is_waited_for_only_so_long() -> None:
    greeting = {2000: "please leave your message at the tone"}
    call = Call().quiet(300).speak(3000, greeting).quiet(CONFIG.beep_wait_ms + 200)
    assert call.cue == "phrase"
    assert call.ready_at == 3300 + CONFIG.beep_wait_ms


def test_a_beep_alone_is_a_machine_ready_at_once() -> None:
    call = Call().quiet(900).beep()
    assert call.verdict == Verdict("machine", "beep", 900)
    assert call.ready_at == 900


def test_a_greeting_that_never_pauses_gets_the_message_in_the_end() -> None:
    call = Call().quiet(200).speak(CONFIG.max_message_wait_ms + 5000)
    verdict_at = 200 + CONFIG.machine_speech_ms
    assert call.verdict == Verdict("machine", "long_greeting", verdict_at)
    assert call.ready_at == verdict_at + CONFIG.max_message_wait_ms


def test_many_words_are_a_machine_even_when_the_voice_pauses_between_them() -> None:
    first = "hi this is mike and jenny"  # six words, then half a second's breath
    call = Call().quiet(200).speak(1500, {1400: first}).quiet(500).final(first)
    call.speak(1000, {800: "we are out enjoying the sunshine today"})
    assert call.verdict == Verdict("machine", "many_words", 3000)


def test_google_call_screen_is_a_screener() -> None:
    said = "hi the person you're calling is using a screening service from google"
    call = Call().quiet(300).speak(6000, {1600: "hi the person you're calling is using"})
    call.final(said).quiet(CONFIG.greeting_end_ms)
    assert call.verdict == Verdict("machine", "screener", 1900)
    assert call.ready_at == 6300 + CONFIG.greeting_end_ms  # the agent answers its question


def test_ios_screening_asks_for_a_name_and_reason() -> None:
    call = Call().quiet(300).speak(1600).final("Please state your name and reason for calling.")
    assert call.verdict == Verdict("machine", "screener", 1900)


@pytest.mark.parametrize(
    "words",
    [
        "Sorry, I can't take your call right now.",
        "Sorry, I can’t take your call right now.",
        "Sorry, I cannot take your call right now.",
        "Sorry, I can not take your call right now.",
        "Sorry I cant take your call right now",
        "SORRY, I CAN'T TAKE YOUR CALL!",
    ],
)
def test_contractions_and_apostrophes_are_the_same_words(words: str) -> None:
    call = Call().quiet(300).speak(1500).final(words)
    assert call.verdict == Verdict("machine", "phrase", 1800)


def test_a_phrase_split_over_two_finals_is_still_found() -> None:
    call = Call().quiet(300).speak(1200).final("hi please leave a").speak(600).final("message")
    assert call.verdict == Verdict("machine", "phrase", 2100)


def test_a_message_before_the_first_pause_outweighs_a_short_greeting() -> None:
    """Short enough for a person, but its final named a machine before the pause ended it."""
    call = Call().quiet(300).speak(1400).quiet(400).final("Voicemail of Ann.").quiet(1000)
    assert call.verdict == Verdict("machine", "phrase", 2100)


# ------------------------------------------------------------------ Russian


@pytest.mark.parametrize(
    ("words", "cue"),
    [
        ("Здравствуйте, вы позвонили Ивану. Оставьте сообщение после сигнала.", "phrase"),
        ("Абонент не может ответить на ваш звонок.", "phrase"),
        ("Аппарат абонента выключен или находится вне зоны действия сети.", "phrase"),
        ("Ваш звонок переадресован на голосовую почту.", "phrase"),
        ("Оставьте свое сообщение", "phrase"),  # the file writes "своё"
        ("Здравствуйте, я голосовой помощник Анны.", "screener"),
        ("Представьтесь и скажите, по какому вопросу звоните.", "screener"),
    ],
)
def test_russian_machines(words: str, cue: str) -> None:
    call = Call("ru").quiet(300).speak(1500).final(words)
    assert call.verdict == Verdict("machine", cue, 1800)


def test_a_russian_greeting_announcing_the_tone_waits_for_it() -> None:
    call = Call("ru").quiet(300).speak(3000, {2400: "здравствуйте говорите после сигнала"})
    call.quiet(CONFIG.greeting_end_ms + 400)
    assert call.verdict == Verdict("machine", "phrase", 2700)
    assert call.ready_at is None
    call.beep()
    assert call.ready_at == call.t


# ------------------------------------------------------------------ matching


TONE = MachinePhrases(machine=("tone",), screener=("state your name",), beep_coming=())


@pytest.mark.parametrize(
    ("words", "verdict"),
    [
        ("a stone's throw", "human"),
        ("the stones", "human"),
        ("intonation", "human"),
        ("the tone.", "machine"),
        ("Tone!", "machine"),
        ("tone-deaf", "machine"),  # a hyphen parts words
        ("the statement, your name", "human"),
        ("state, your... NAME", "machine"),
    ],
)
def test_phrases_match_whole_words(words: str, verdict: str) -> None:
    call = Call(phrases=TONE).quiet(300).speak(1000, {600: words}).quiet(1000)
    assert call.answered_by == verdict


@pytest.mark.parametrize("language", ["en", "ru"])
def test_every_phrase_of_the_file_said_alone_is_a_machine(language: str) -> None:
    phrases = PHRASES[language]
    for phrase in phrases.machine + phrases.screener + phrases.beep_coming:
        call = Call(language).quiet(300).speak(1000, {600: phrase})
        assert call.answered_by == "machine", phrase


# ------------------------------------------------------------------ nothing decided


def test_no_voice_at_all_is_unknown_at_the_limit() -> None:
    call = Call().quiet(CONFIG.max_wait_ms + 1000)
    assert call.prompts == [CONFIG.prompt_after_ms]
    assert call.verdict == Verdict("unknown", "timeout", CONFIG.max_wait_ms)
    assert call.seen_at == CONFIG.max_wait_ms
    assert call.ready_at is None  # the call goes on as with a person


def test_a_verdict_never_changes() -> None:
    call = Call().quiet(200).speak(500).quiet(800)
    first = call.verdict
    assert call.answered_by == "human"
    call.final("you have reached the voicemail of ann").speak(4000).beep().quiet(3000)
    assert call.verdict is first
    assert call.ready_at is None


def test_a_late_short_line_does_not_come_once_the_callee_spoke() -> None:
    call = Call().quiet(1000).speak(3000).quiet(2000)
    assert call.prompts == []


def test_words_the_voice_detector_missed_also_make_the_short_line_unneeded() -> None:
    call = Call().quiet(800).partial("hello").quiet(1500)
    assert call.prompts == []


def test_every_cue_is_documented_where_the_outcome_carries_it() -> None:
    """The sheet and the console show the cue; the contract says what each one means."""
    described = Amd.model_fields["cue"].description or ""
    for cue in CUES:
        assert cue in described, cue


@pytest.mark.parametrize(
    "overrides",
    [
        {"pause_ms": 0},
        {"person_max_speech_ms": 4000, "machine_speech_ms": 3500},
        {"pause_ms": 2000, "person_pause_ms": 1500},
    ],
)
def test_a_config_that_cannot_work_is_refused(overrides: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        AmdConfig(**overrides)


# ------------------------------------------------------------------ the phrase file


def test_the_file_holds_both_languages_lists() -> None:
    data = json.loads(PHRASES_FILE.read_text(encoding="utf-8"))
    for language, phrases in PHRASES.items():
        assert list(phrases.machine) == data[language]["machine"]
        assert list(phrases.screener) == data[language]["screener"]
        assert list(phrases.beep_coming) == data[language]["beep_coming"]


def test_the_default_file_is_the_repositorys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert DEFAULT_PHRASES_FILE.resolve() == PHRASES_FILE
    assert load_default_phrases("ru-RU") == PHRASES["ru"]


def test_a_language_the_file_lacks_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"'de'.*en, ru"):
        load_phrases(PHRASES_FILE, "de")


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_phrases(tmp_path / "amd.json", "en")


GOOD = {
    "about": ["what the file is for"],
    "en": {
        "machine": ["leave a message"],
        "screener": ["state your name"],
        "beep_coming": ["after the tone"],
    },
}


def test_a_small_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "amd.json"
    path.write_text(json.dumps(GOOD), encoding="utf-8")
    assert load_phrases(path, "EN") == MachinePhrases(
        machine=("leave a message",), screener=("state your name",), beep_coming=("after the tone",)
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"en": {"machine": ["a"], "screener": ["b"]}}', r"en\.beep_coming"),
        ('{"en": {"machine": "a", "screener": ["b"], "beep_coming": ["c"]}}', r"en\.machine"),
        ('{"en": {"tones": ["a"]}}', "expected lists named machine"),
        ('{"en": {"machine": ["..."], "screener": ["b"], "beep_coming": ["c"]}}', "no phrase"),
        ('{"en": {"machine": [3], "screener": ["b"], "beep_coming": ["c"]}}', "no phrase"),
        ('{"en": {"machine": ["a"],}', "not valid JSON"),
        ('["en"]', "an object of languages"),
    ],
)
def test_a_broken_file_is_refused_and_says_why(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "amd.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_phrases(path, "en")


def test_a_long_reply_to_the_short_line_is_a_person() -> None:
    """Silent at first, then, after "Hello?", the whole story in one breath: a person."""
    detector = AnsweringMachineDetector(AmdConfig(), PHRASES["en"])
    t = 0.0
    while not detector.due_prompt(t):
        t += 20
        detector.voice(False, t)
    t += 600
    detector.prompted(t)
    for _ in range(250):  # five seconds of speech
        t += 20
        detector.voice(True, t)
    detector.transcript(
        "Hi yes this is John Smith my left knee has hurt for two weeks it is a sharp pain",
        False,
        t,
    )
    assert detector.decide(t) is None
    for _ in range(40):
        t += 20
        detector.voice(False, t)
    verdict = detector.decide(t)
    assert verdict is not None
    assert (verdict.answered_by, verdict.cue) == ("human", "reply_to_prompt")
