"""FreeSWITCH's argument splitting, the source of the metadata pitfalls of uuid_audio_fork."""

from __future__ import annotations

import pytest

from callsim.switch_strings import parse_brackets, separate_string

U = "2c1f5b9e-6c43-4f5e-9a6e-0f5d8b6f7a11"


@pytest.mark.parametrize(
    ("line", "parts"),
    [
        # runs of spaces separate; the 7th slot takes the rest of the line
        (
            f"{U}  start ws://b:8080/fork stereo 16k",
            [U, "start", "ws://b:8080/fork", "stereo", "16k"],
        ),
        (
            f'{U} start ws://b/f stereo 16k {{"a":1}}',
            [U, "start", "ws://b/f", "stereo", "16k", '{"a":1}'],
        ),
        # the pitfall: JSON with spaces and no bugname -> bugname '{"a":' and metadata '1, "b": 2}'
        (
            f'{U} start ws://b/f stereo 16k {{"a": 1, "b": 2}}',
            [U, "start", "ws://b/f", "stereo", "16k", '{"a":', '1, "b": 2}'],
        ),
        # an explicit bugname keeps the metadata whole
        (
            f'{U} start ws://b/f stereo 16k fork1 {{"a": 1, "b": 2}}',
            [U, "start", "ws://b/f", "stereo", "16k", "fork1", '{"a": 1, "b": 2}'],
        ),
        # single quotes protect spaces and are removed
        (
            f"{U} start ws://b/f stereo 16k fork1 '{{\"a\": 1}}'",
            [U, "start", "ws://b/f", "stereo", "16k", "fork1", '{"a": 1}'],
        ),
        # a backslash escapes: \" becomes "
        ('a \\"b\\" c', ["a", '"b"', "c"]),
        # ^^| changes the delimiter; empty fields are kept
        (
            f'^^|{U}|start|ws://b/f|stereo|16000||{{"a": 1}}',
            [U, "start", "ws://b/f", "stereo", "16000", "", '{"a": 1}'],
        ),
    ],
)
def test_separate_string(line: str, parts: list[str]) -> None:
    assert separate_string(line, 7) == parts


def test_originate_variables_with_escaped_commas_and_quotes_removed() -> None:
    line = (
        "{origination_uuid="
        + U
        + ",originate_timeout=30,note=a\\,b,api_on_answer='uuid_audio_fork "
        + U
        + " start ws://b/f stereo 16k'}sofia/gateway/carrier/15551234567 &park()"
    )
    args = separate_string(line, 8)
    assert args[1] == "&park()"
    variables, dial = parse_brackets(args[0])
    assert dial == "sofia/gateway/carrier/15551234567"
    assert variables["origination_uuid"] == U
    assert variables["originate_timeout"] == "30"
    assert variables["note"] == "a,b"
    assert variables["api_on_answer"] == f"uuid_audio_fork {U} start ws://b/f stereo 16k"


def test_brackets_with_another_separator() -> None:
    assert parse_brackets("{^^;a=1;b=x=y}rest") == ({"a": "1", "b": "x=y"}, "rest")
    with pytest.raises(ValueError, match="unterminated"):
        parse_brackets("{a=1")
