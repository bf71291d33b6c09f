"""AIME 2025: 30 competition problems with integer answers.

inspect_evals' record_to_sample, solver and scorer on the pinned file. The file lacks the hub's `id`
column, which is the 0-based line index; it is restored here so sample ids match the hub's.
"""

from __future__ import annotations

from inspect_ai import Task as InspectTask
from inspect_ai.dataset import MemoryDataset
from inspect_evals.aime2025.aime2025 import record_to_sample
from inspect_evals.utils.aime_common import aime_scorer, aime_solver

from posttrainbench.data import DataFile, TaskData, read_jsonl
from posttrainbench.specs import TaskInfo
from posttrainbench.tasks.base import EvalOptions, Task


class AIME2025Task(Task):
    info = TaskInfo(
        name="aime2025",
        benchmark="American Invitational Mathematics Examination (AIME) 2025",
        description="AIME 2025 I and II (30 problems), integer answers",
        default_limit=None,
        default_max_tokens=16000,
        retry_max_tokens=(12000, 8000),
        test_sets=("math-ai/aime25", "opencompass/AIME2025", "yentinglin/aime_2025"),
        allowed_training_data="anything except the AIME 2025 problems and their solutions",
    )
    data_folder = "aime2025"
    data_files = (
        DataFile(
            path="test.jsonl",
            url="https://raw.githubusercontent.com/Zhuofeng-Li/math-evaluation-harness/"
            "a0448031ca940fa85ebc55a461a047874ea5ac5f/data/aime25/test.jsonl",
            sha256="5ee6e9fb9b8c0408c8e3591709b6927063abf73ed238c029167a7eff7376cca0",
        ),
    )

    def inspect_task(self, data: TaskData, options: EvalOptions) -> InspectTask:
        records = read_jsonl(data.path("test.jsonl"))
        samples = [record_to_sample({"id": str(i), **r}) for i, r in enumerate(records)]
        return InspectTask(
            name="aime2025",
            dataset=MemoryDataset(samples, name="aime2025"),
            solver=aime_solver(),
            scorer=aime_scorer(),
        )
