"""GPQA (main set, 448 questions): four-choice graduate-level science questions.

inspect_evals' record_to_sample, `multiple_choice(cot=True)` and `choice()`. The CSV is read from the
authors' password-protected zip in memory, never extracted. Choices are shuffled with the evaluation's
seed (the original shuffled without one, so its answer order differed run to run).
"""

from __future__ import annotations

import csv
import io
import zipfile

from inspect_ai import Task as InspectTask
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.scorer import choice
from inspect_ai.solver import multiple_choice
from inspect_evals.gpqa.gpqa import record_to_sample

from posttrainbench.data import DataFile, TaskData
from posttrainbench.specs import TaskInfo
from posttrainbench.tasks.base import EvalOptions, Task

MEMBER = "dataset/gpqa_main.csv"
PASSWORD = b"deserted-untie-orchid"  # public, from the GPQA README


class GPQAMainTask(Task):
    info = TaskInfo(
        name="gpqamain",
        benchmark="GPQA",
        description="GPQA main set (448 four-choice science questions), chain of thought, seeded choice order",
        default_limit=50,
        default_max_tokens=16000,
        retry_max_tokens=(12000, 8000),
        test_sets=("Idavidrein/gpqa", "gpqa_main.csv"),
        allowed_training_data="anything except GPQA (any of its sets) and its explanations",
    )
    data_folder = "gpqa"
    data_files = (
        DataFile(
            path="dataset.zip",
            url="https://raw.githubusercontent.com/idavidrein/gpqa/56686c06f5e19865c153de0fdb11be3890014df7/dataset.zip",
            sha256="461ae7329f15a3e35f8184d2dac24b990f34fdf12f366ca4062d8e6638cd08dc",
        ),
    )

    chance = 0.25

    def gold_answer(self, sample: Sample) -> str:
        return f"ANSWER: {sample.target}"  # the line choice() reads

    def inspect_task(self, data: TaskData, options: EvalOptions) -> InspectTask:
        with zipfile.ZipFile(data.path("dataset.zip")) as z:
            text = z.read(MEMBER, pwd=PASSWORD).decode("utf-8")
        dataset = MemoryDataset(
            [record_to_sample(r) for r in csv.DictReader(io.StringIO(text))], name="gpqa_main"
        )
        dataset.shuffle_choices(seed=options.seed)
        return InspectTask(
            name="gpqamain",
            dataset=dataset,
            solver=multiple_choice(cot=True),
            scorer=choice(),
        )
