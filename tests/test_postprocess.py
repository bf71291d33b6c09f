"""Answer clean-up before judging: think-block removal and the original's repetition limits."""

from __future__ import annotations

import pytest

from posttrainbench.evaluation.postprocess import clean_answer, limit_repetitions


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("<think>plan it</think>\n\nThe answer.", "The answer."),
        ("  <think>plan</think>Answer  ", "Answer"),
        ("<think>a</think>b</think>c", "b</think>c"),  # only the first closing tag ends the block
        ("<think>never closed, so kept", "<think>never closed, so kept"),
        ("Intro <think>x</think> rest", "Intro <think>x</think> rest"),  # not a leading block
        ("plain answer", "plain answer"),
    ],
)
def test_clean_answer_think_block(raw, cleaned):
    assert clean_answer(raw) == cleaned


def test_clean_answer_limits_repetition_after_stripping():
    raw = "<think>" + "thinking\n" * 50 + "</think>" + "Done.\n" * 9 + "Bye."
    assert clean_answer(raw) == "Done.\n" * 5 + "Bye."


def test_identical_lines_are_cut_to_five():
    assert limit_repetitions("x\n" * 5 + "end") == "x\n" * 5 + "end"
    assert limit_repetitions("x\n" * 6 + "end") == "x\n" * 5 + "end"
    assert limit_repetitions("top\n" + "same line\n" * 40 + "end") == "top\n" + "same line\n" * 5 + "end"
    assert limit_repetitions("x\n" * 6 + "end", max_reps=2) == "x\n" * 2 + "end"


def _line(tag: str) -> str:
    # ~400 distinct characters: too long for the substring rule (units of at most 500 characters span
    # less than two such lines), so only the block rule can catch a repeated pair of them.
    return " ".join(f"{tag}{i}" for i in range(100))


def test_repeated_block_of_long_lines():
    a, b = _line("a"), _line("b")
    block = [a, b]
    text = "\n".join(["intro", *block * 8, "outro"])
    assert limit_repetitions(text) == "\n".join(["intro", *block * 5, "outro"])
    # Five copies are left alone.
    five = "\n".join(["intro", *block * 5, "outro"])
    assert limit_repetitions(five) == five


def test_repeated_block_drops_a_truncated_trailing_copy():
    a, b = _line("a"), _line("b")
    truncated = "\n".join([*[a, b] * 8, a[:37]])
    assert limit_repetitions(truncated) == "\n".join([a, b] * 5)
    # A full line that differs is not a truncated copy: it stays.
    kept = "\n".join([*[a, b] * 8, _line("c")])
    assert limit_repetitions(kept) == "\n".join([*[a, b] * 5, _line("c")])


@pytest.mark.parametrize(
    ("text", "limited"),
    [
        ("abc" * 20, "abc" * 5),
        ("The cat sat. " * 7 + "Fin", "The cat sat. " * 5 + "Fin"),
        ("ab" * 40, "ab" * 10),  # units are at least 3 characters: "abab" is the repeated unit
        ("no repetition here, just a sentence.", "no repetition here, just a sentence."),
        ("xyz" * 5, "xyz" * 5),
        ("xyz" * 6, "xyz" * 5),
        ("Lorem ipsum dolor sit amet, " * 3 + "q" * 4, "Lorem ipsum dolor sit amet, " * 3 + "q" * 4),
    ],
)
def test_repeated_substrings(text, limited):
    assert limit_repetitions(text) == limited


def test_long_repeated_unit_spanning_lines():
    unit = "A stanza that loops,\nover and over, forever.\n"
    assert limit_repetitions("Start\n" + unit * 12) == "Start\n" + unit * 5


def test_runaway_generation_is_bounded():
    # A model stuck in a loop until its budget ran out, cut mid-sentence.
    loop = "I will now repeat myself. "
    text = "Here is my answer.\n" + loop * 2000 + loop[:11]
    assert limit_repetitions(text) == "Here is my answer.\n" + loop * 5 + loop[:11]
