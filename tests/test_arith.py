"""The arith toy task: deterministic disjoint splits, and the real inspect scorer on
hand-written model outputs (through inspect's mockllm provider)."""

from __future__ import annotations

import inspect_ai
import pytest
from inspect_ai.model import ModelOutput, ModelUsage, get_model

from posttrainbench import tasks
from posttrainbench.tasks.arith import data
from posttrainbench.tasks.arith.task import first_number
from posttrainbench.tasks.base import EvalOptions


def test_splits_are_disjoint_and_deterministic():
    train, test = data.train_split(), data.test_split()
    assert len(train) == data.TRAIN_SIZE and len(test) == data.TEST_SIZE
    key = lambda it: (it.a, it.b, it.op)  # noqa: E731
    assert not {key(i) for i in train} & {key(i) for i in test}
    assert test[0].id == "test-000" and data.test_split()[0] == test[0]
    for it in (*test[:50], *train[:50]):
        assert 10 <= it.a <= 99 and 10 <= it.b <= 99
        assert it.answer == (it.a + it.b if it.op == "+" else it.a - it.b)


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("85", "85"),
        ("85.", "85"),
        ("The answer is 85.", "85"),
        ("-7", "-7"),
        (" 12\n", "12"),
        ("no idea", None),
    ],
)
def test_first_number(text, number):
    assert first_number(text) == number


def _output(text: str) -> ModelOutput:
    out = ModelOutput.from_content(model="mockllm/model", content=text)
    # With usage set, inspect does not count tokens with tiktoken (which would download encodings).
    out.usage = ModelUsage(input_tokens=10, output_tokens=2, total_tokens=12)
    return out


def _score(outputs: list[str]) -> float:
    task = tasks.get("arith")
    model = get_model("mockllm/model", custom_outputs=[_output(o) for o in outputs])
    log = inspect_ai.eval(
        task.inspect_task(task.data(), EvalOptions()),
        model=model,
        limit=len(outputs),
        display="none",
        log_dir="/tmp/ptb-test-logs",
    )[0]
    assert log.status == "success"
    return log.results.scores[0].metrics["accuracy"].value


def test_scorer_on_real_outputs():
    test = data.test_split()[:6]
    right = [str(test[0].answer), f"{test[1].answer}.", f"The answer is {test[2].answer}"]
    wrong = [
        str(test[3].answer + 1),
        "I cannot compute that",
        f"{test[5].a} {test[5].op} {test[5].b} = {test[5].answer}",
    ]
    # The last one restates the question first: exact match takes the first number, so it is wrong.
    assert _score(right + wrong) == pytest.approx(0.5)
    assert _score(right) == 1.0
