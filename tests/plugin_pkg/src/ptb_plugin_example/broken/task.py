"""`plugin-broken`: a task that fails the bar on purpose: a sample without a target, a scorer that
passes everything, and a token budget no evaluation budget can hold."""

from __future__ import annotations

from inspect_ai import Task as InspectTask
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.scorer import CORRECT, Score, Target, accuracy, scorer
from inspect_ai.solver import TaskState, generate

from posttrainbench.data import TaskData
from posttrainbench.specs import TaskInfo
from posttrainbench.tasks.base import EvalOptions, Task


@scorer(metrics=[accuracy()])
def always_right():
    async def score(state: TaskState, target: Target) -> Score:
        return Score(value=CORRECT)

    return score


class BrokenTask(Task):
    info = TaskInfo(
        name="plugin-broken",
        benchmark="Broken",
        description="fails `ptb validate task` on purpose",
        default_limit=None,
        default_max_tokens=1_000_000,
        default_max_connections=1,
    )

    def inspect_task(self, data: TaskData, options: EvalOptions) -> InspectTask:
        samples = [
            Sample(id=f"q{i}", input=f"What is {i} + 1?", target=str(i + 1) if i else "") for i in range(10)
        ]
        return InspectTask(
            dataset=MemoryDataset(samples, name="broken"), solver=generate(), scorer=always_right()
        )
