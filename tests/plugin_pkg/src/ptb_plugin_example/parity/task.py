"""`plugin-parity`: is a number even or odd? Forty items made in code, scored on the first word."""

from __future__ import annotations

from inspect_ai import Task as InspectTask
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.scorer import CORRECT, INCORRECT, Score, Target, accuracy, scorer
from inspect_ai.solver import TaskState, generate

from posttrainbench.data import TaskData
from posttrainbench.specs import TaskInfo
from posttrainbench.tasks.base import EvalOptions, Task

NUMBERS = [17 * i + 3 for i in range(40)]


@scorer(metrics=[accuracy()])
def first_word():
    async def score(state: TaskState, target: Target) -> Score:
        words = state.output.completion.strip().split()
        answer = words[0].strip(".,!").lower() if words else ""
        return Score(value=CORRECT if answer == target.text else INCORRECT, answer=answer)

    return score


class ParityTask(Task):
    info = TaskInfo(
        name="plugin-parity",
        benchmark="Parity",
        description="is the number even or odd (a plugin task)",
        default_limit=None,
        default_max_tokens=4,
        default_max_connections=64,
    )
    chance = 0.5

    def inspect_task(self, data: TaskData, options: EvalOptions) -> InspectTask:
        samples = [
            Sample(
                id=f"n{n}",
                input=f"Is {n} even or odd? Answer with one word.",
                target="odd" if n % 2 else "even",
            )
            for n in NUMBERS
        ]
        return InspectTask(
            dataset=MemoryDataset(samples, name="parity"), solver=generate(), scorer=first_word()
        )
