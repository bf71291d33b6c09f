"""`arith`: a toy benchmark for the offline demo, scored by exact match of the number."""

from __future__ import annotations

import json
import re
from pathlib import Path

from inspect_ai import Task as InspectTask
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.scorer import CORRECT, INCORRECT, Score, Target, accuracy, scorer, stderr
from inspect_ai.solver import TaskState, generate

from posttrainbench.data import TaskData
from posttrainbench.specs import TaskInfo
from posttrainbench.tasks.arith.data import ArithItem, test_split, train_split
from posttrainbench.tasks.base import EvalOptions, Task

TRAIN_FILE = "arith_train.jsonl"
NUMBER = re.compile(r"-?\d+")


def first_number(text: str) -> str | None:
    match = NUMBER.search(text)
    return match.group() if match else None


@scorer(metrics=[accuracy(), stderr()])
def exact_number():
    """Correct when the first integer in the completion equals the answer."""

    async def score(state: TaskState, target: Target) -> Score:
        answer = first_number(state.output.completion)
        return Score(
            value=CORRECT if answer == target.text else INCORRECT,
            answer=answer,
            explanation=state.output.completion,
        )

    return score


def _example(item: ArithItem) -> dict:
    return {
        "prompt": [{"role": "user", "content": item.question}],
        "completion": [{"role": "assistant", "content": str(item.answer)}],
    }


class ArithTask(Task):
    info = TaskInfo(
        name="arith",
        benchmark="Arith",
        description="toy task: two-digit addition and subtraction, exact match (offline demo)",
        default_limit=50,
        default_max_tokens=16,
        default_max_connections=256,  # the whole test set in one batch: answers are a few tokens
        retry_max_tokens=(12, 8),
        allowed_training_data=f"the task's training split, given as {TRAIN_FILE} in the workspace",
    )

    def agent_files(self) -> dict[str, Path | str]:
        files = super().agent_files()
        files[TRAIN_FILE] = _train_file()
        return files

    def inspect_task(self, data: TaskData, options: EvalOptions) -> InspectTask:
        samples = [Sample(id=it.id, input=it.question, target=str(it.answer)) for it in test_split()]
        return InspectTask(
            name="arith",
            dataset=MemoryDataset(samples, name="arith-test"),
            solver=generate(),
            scorer=exact_number(),
        )

    def contamination_keys(self, data: TaskData) -> dict[str, str]:
        return {it.id: it.expression for it in test_split()}

    def training_examples(self, workspace: Path) -> list[dict]:
        lines = (workspace / TRAIN_FILE).read_text().splitlines()
        return [_example(ArithItem.model_validate_json(line)) for line in lines if line.strip()]

    def test_examples(self, data: TaskData) -> list[dict]:
        return [_example(it) for it in test_split()]


def _train_file() -> Path:
    """The training split as JSONL, written once into the harness's state directory."""
    from posttrainbench.settings import ptb_home

    path = ptb_home() / "data" / "arith" / TRAIN_FILE
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(it.model_dump()) + "\n" for it in train_split()))
        tmp.replace(path)
    return path
