"""bench/golden.py's regression signals: a repetition loop and an answer that is no longer JSON."""

from __future__ import annotations

from bench.golden import LOOP_LIMIT, is_json, longest_loop


def test_a_repetition_loop_is_counted() -> None:
    looping = '{"summary": "' + "the patient has hypertension and the patient has " * 10 + '"}'
    assert longest_loop(looping) >= LOOP_LIMIT
    varied = (
        '{"summary": "67-year-old woman with hypertension since 2015, potassium 5.9 mmol/L on 2024-03-01."}'
    )
    assert longest_loop(varied) < LOOP_LIMIT


def test_json_after_a_thinking_span_counts_as_json() -> None:
    assert is_json('<unused94>thought: check the potassium<unused95>{"summary": []}')
    assert not is_json('{"summary": [')
    assert not is_json("[1, 2]")
