"""The dialogue suites against the real embedded LLM, one per clinic: the scripted text calls
(happy paths, out-of-order answers, corrections, questions, objections, exits, silence,
hang-ups, barge-ins, DTMF, a prompt injection, Russian) of the English-speaking clinic
(prompts/clinic, tests/dialogues) and of the Russian diagnostic center (prompts/clinic_ru,
tests/dialogues_ru), scored on completion, slot accuracy and double bookings."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from callkit.llm_client import LlmClient
from policy_engine.dialogues import load_dialogues, run_suite
from policy_engine.script import load_script

ROOT = Path(__file__).parents[2]


async def _suite_meets_its_targets(
    clinic: str, dialogues: str, redis_url: str, llm_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = load_dialogues([ROOT / "tests" / dialogues])
    assert len(specs) >= 30
    system = (ROOT / "prompts" / "system.en.txt").read_text(encoding="utf-8")
    async with LlmClient(llm_url, "clinic-agent") as llm:
        await llm.warm_up(system)
        report = await run_suite(
            load_script(ROOT / "prompts" / clinic),
            redis_url,
            specs,
            llm=llm,
            system_prompt=system,
            run_id=f"test-suite-{uuid.uuid4().hex[:8]}",
        )
    with capsys.disabled():
        print(f"\n{clinic}:\n" + "\n".join(report.lines()))
    assert len(report.bookings) >= 20
    assert report.booked_with_every_slot_right >= 0.95
    assert report.double_bookings == []
    # Calls that must not book end the way the caller wanted.
    for result in report.results:
        if not result.booking:
            assert result.passed, (result.name, result.problems)
    # The LLM was really used (symptoms it alone could read, a question the FAQ lacks).
    assert any(used for r in report.results for _, used in r.turn_ms)


async def test_the_dialogue_suite_meets_its_targets(
    redis_url: str, embedded_llm: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await _suite_meets_its_targets("clinic", "dialogues", redis_url, embedded_llm, capsys)


async def test_the_russian_clinics_dialogue_suite_meets_its_targets(
    redis_url: str, embedded_llm: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await _suite_meets_its_targets("clinic_ru", "dialogues_ru", redis_url, embedded_llm, capsys)
