"""Russian finals: numbers as digits, phone numbers, prices, weights and times written as a
Russian reads them, the clinic's terms corrected, and the gateway's languages checked."""

from __future__ import annotations

import pytest

from asr_gateway.languages import Languages, UnsupportedLanguage
from asr_gateway.postprocess import (
    Evidence,
    HotwordCorrector,
    format_entities,
    hallucination_reason,
)
from callkit.errors import ConfigError

VOCABULARY = ["РУМА", "МРТ", "КТ", "УЗИ"]


@pytest.mark.parametrize(
    ("said", "written"),
    [
        ("Мне сорок пять лет.", "Мне 45 лет."),
        ("Вес восемьдесят два килограмма.", "Вес 82 кг."),
        ("Сколько стоит? Четыре тысячи пятьсот рублей.", "Сколько стоит? 4500 ₽."),
        # Digits in groups, as a Russian number is read, with and without the trunk 8.
        (
            "Мой номер девять один шесть сто двадцать три сорок пять шестьдесят семь.",
            "Мой номер +7 916 123-45-67.",
        ),
        (
            "Телефон восемь девятьсот шестнадцать сто двадцать три сорок пять шестьдесят семь",
            "Телефон +7 916 123-45-67",
        ),
        ("Можно в четырнадцать тридцать?", "Можно в 14:30?"),
        ("Сорок пять!", "45!"),
        # Words the conversion has no business with stay as they were.
        ("Иван Петрович Сидоров", "Иван Петрович Сидоров"),
        ("Да, конечно, давайте.", "Да, конечно, давайте."),
        ("В 3 часа дня", "В 3 часа дня"),
    ],
)
def test_russian_numbers_are_written_as_a_russian_writes_them(said: str, written: str) -> None:
    assert format_entities(said, "ru") == written


def test_english_formatting_stays_as_it_was() -> None:
    said = "It is one hundred twenty dollars, call five five five one two three four five six seven"
    assert format_entities(said) == "It is $120, call 555-123-4567"
    assert format_entities("at 3pm, weight 80 kilograms", "en") == "at 3 PM, weight 80 kg"


def test_a_russian_number_is_not_written_as_an_american_one() -> None:
    assert format_entities("916 123 45 67", "ru") == "+7 916 123-45-67"
    assert format_entities("916 123 45 67", "en") == "916-123-4567"


@pytest.mark.parametrize(
    ("heard", "corrected"),
    [
        ("Я звоню в Рума по поводу эм эр тэ колена", "Я звоню в РУМА по поводу МРТ колена"),
        ("Это центр Руме?", "Это центр РУМА?"),
        ("мне нужно ка тэ.", "мне нужно КТ."),
        ("а узи сколько стоит", "а УЗИ сколько стоит"),
        # Everyday words near a short term or the name are never replaced.
        ("кто делает кт", "кто делает КТ"),
        ("Мне нужна рама", "Мне нужна рама"),
        ("Эм, я не знаю", "Эм, я не знаю"),
        ("кот и кит", "кот и кит"),
    ],
)
def test_the_clinics_terms_are_corrected_in_russian_text(heard: str, corrected: str) -> None:
    assert HotwordCorrector(VOCABULARY).correct(heard) == corrected


def test_a_short_english_term_is_taken_only_as_said() -> None:
    corrector = HotwordCorrector(["CT", "RUMA"])
    assert corrector.correct("my cat needs a ct at Rooma") == "my cat needs a CT at RUMA"


WEAK = Evidence(no_speech_prob=0.4, avg_logprob=-0.9, compression_ratio=1.2, speech_ratio=0.5)
SURE = Evidence(no_speech_prob=0.02, avg_logprob=-0.3, compression_ratio=1.2, speech_ratio=0.9)
PROMPT = "Диагностический центр РУМА. Запись на МРТ коленного сустава."


def test_the_initial_prompt_said_back_on_weak_audio_is_dropped() -> None:
    assert hallucination_reason("Диагностический центр РУМА.", WEAK, prompt=PROMPT) is not None
    # Said clearly, the same words are a caller's.
    assert hallucination_reason("Диагностический центр РУМА.", SURE, prompt=PROMPT) is None
    # A short answer that happens to be in the prompt is kept.
    assert hallucination_reason("МРТ.", WEAK, prompt=PROMPT) is None


def test_russian_caption_phantoms_are_dropped_on_weak_audio_only() -> None:
    assert hallucination_reason("Субтитры сделал DimaTorzok", WEAK) is not None
    assert hallucination_reason("Подписывайтесь на канал!", WEAK) is not None
    assert hallucination_reason("Спасибо.", SURE) is None


def test_a_phone_number_read_digit_by_digit_is_not_a_loop() -> None:
    said = "девять один шесть один два три девять один шесть один два три"
    assert hallucination_reason(said, WEAK) is None


def test_an_english_only_model_refuses_russian() -> None:
    english = Languages.of("whisper-tiny.en", ["en"])
    assert english.check("en") == "en"
    with pytest.raises(UnsupportedLanguage, match="whisper-base") as refused:
        english.check("ru")
    assert refused.value.code == "unsupported_language"
    with pytest.raises(ConfigError, match="ASR_LANGUAGE=ru"):
        english.check_default("ru")


def test_a_multilingual_model_takes_whisper_languages_and_only_those() -> None:
    base = Languages.of("whisper-base", ["multilingual"], vocabularies={"RU": VOCABULARY})
    assert base.check("RU") == "ru"
    assert base.vocabulary("ru") == VOCABULARY
    assert base.vocabulary("en") == []
    with pytest.raises(UnsupportedLanguage, match="not a language code"):
        base.check("xx")
