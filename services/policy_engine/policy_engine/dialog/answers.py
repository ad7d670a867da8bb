"""Free answers: a short reply written by the LLM, streamed sentence by sentence and filtered.

Nothing the model writes reaches the caller unchecked: a sentence with a number or a currency
(prices and times come from the catalogue and the calendar), or one that talks about its own
instructions (the lexicon's ``never_say``), is dropped, and at most two sentences are said.
When nothing is left, or the model is down, the caller hears the scripted fallback.
"""

from __future__ import annotations

import asyncio
import logging
import re

from callkit.errors import AgentError
from policy_engine.dialog.context import SENTENCE_END, Turn
from policy_engine.lexicon import Words
from policy_engine.session import Sentence

log = logging.getLogger("policy_engine.answers")
MAX_SENTENCES = 2
MAX_SENTENCE_CHARS = 240
_NUMBERS_AND_MONEY = re.compile(r"\d|\$|€|£|₽")
# The language a free answer is written in, per call locale.
LANGUAGES = {"en": "English", "ru": "Russian"}


def safe_to_say(sentence: str, words: Words) -> bool:
    """Whether a sentence the model wrote may be said to the caller."""
    sentence = sentence.strip()
    return bool(
        sentence
        and len(sentence) <= MAX_SENTENCE_CHARS
        and not _NUMBERS_AND_MONEY.search(sentence)
        and not words.never_say.search(sentence)
    )


async def free_answer(t: Turn, question: str) -> None:
    """Answer a question the FAQ does not cover, or say the scripted fallback."""
    t.llm_wanted = True
    llm = t.deps.llm
    if llm is None or not t.deps.answer_with_llm:
        await t.phrase("cannot_answer")
        return
    facts = (
        f"Clinic: {t.script.clinic.name[t.locale]}. "
        f"Answer the caller's question in {LANGUAGES.get(t.locale, t.locale)}, in one short "
        "sentence, then stop. Do not mention prices, times, dates or numbers; do not give "
        "medical advice."
    )
    # The static part first (the server reuses its cached prefix), then only what the caller
    # was just told: a longer history costs prefill time on the caller's silence.
    said = [line for line in t.session.transcript[:-1] if line.role == "agent"][-1:]
    messages = [
        {"role": "system", "content": t.deps.system_prompt},
        {"role": "system", "content": facts},
        *({"role": "assistant", "content": line.text} for line in said),
        {"role": "user", "content": question},
    ]
    t.llm_calls += 1
    spoken = 0
    buffer = ""
    try:
        async with t.waiting_on_llm() as deadline:
            async for delta in llm.stream(messages, max_tokens=60, temperature=0.3, kind="answer"):
                buffer += delta
                *done, buffer = SENTENCE_END.split(buffer)
                for sentence in done:
                    if spoken < MAX_SENTENCES and await _say_if_safe(t, sentence):
                        spoken += 1
                        # The caller hears the answer: the next sentence gets a deadline of its own.
                        deadline.reschedule(
                            asyncio.get_running_loop().time() + t.deps.llm_deadline_s
                        )
            complete = re.search(r"[.!?]$", buffer.strip())
            if complete and spoken < MAX_SENTENCES and await _say_if_safe(t, buffer):
                spoken += 1
    except TimeoutError:
        t.llm_late = spoken == 0
    except AgentError as exc:
        t.llm_failed = True
        log.warning("LLM answer failed; saying the scripted fallback", extra={"code": exc.code})
    if spoken == 0:
        await t.phrase("cannot_answer")


async def _say_if_safe(t: Turn, sentence: str) -> bool:
    if not safe_to_say(sentence, t.script.words):
        return False
    await t.say(Sentence(text=sentence.strip(), source="answer", state=t.session.state))
    return True
