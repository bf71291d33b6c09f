"""GSM8K: grade-school math word problems, 10-shot, numeric match of the final answer.

inspect_evals' own pieces (record_to_sample, prompt template, few-shot formatting, `match(numeric=True)`)
on the pinned data files; the few-shot examples are the first 10 of the train split after the same
seeded permutation the hub loader applies.
"""

from __future__ import annotations

import numpy as np
from inspect_ai import Task as InspectTask
from inspect_ai.dataset import MemoryDataset
from inspect_ai.scorer import match
from inspect_ai.solver import generate, prompt_template, system_message
from inspect_evals.constants import DEFAULT_FEWSHOT_SEED
from inspect_evals.gsm8k.gsm8k import MATH_PROMPT_TEMPLATE, record_to_sample, sample_to_fewshot

from posttrainbench.data import DataFile, TaskData, read_jsonl
from posttrainbench.specs import TaskInfo
from posttrainbench.tasks.base import EvalOptions, Task

FEWSHOT = 10
_ORIGIN = "https://raw.githubusercontent.com/openai/grade-school-math/3101c7d5072418e28b9008a6636bde82a006892c/grade_school_math/data"


class GSM8KTask(Task):
    info = TaskInfo(
        name="gsm8k",
        benchmark="GSM8K (Grade School Math 8K)",
        description="grade-school math word problems (1,319), 10-shot, numeric answer match",
        default_limit=150,
        default_max_tokens=4000,
        retry_max_tokens=(3000, 2000),
        test_sets=("openai/gsm8k:test", "grade-school-math/data/test"),
        allowed_training_data="anything except the GSM8K test split (the train split is allowed)",
    )
    data_folder = "gsm8k"
    data_files = (
        DataFile(
            path="test.jsonl",
            url=f"{_ORIGIN}/test.jsonl",
            sha256="3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14",
        ),
        DataFile(
            path="train.jsonl",
            url=f"{_ORIGIN}/train.jsonl",
            sha256="17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465",
        ),
    )

    def inspect_task(self, data: TaskData, options: EvalOptions) -> InspectTask:
        train = read_jsonl(data.path("train.jsonl"))
        # `datasets.Dataset.shuffle(seed)` (inspect_evals' hub loader) permutes with exactly this
        # generator, so the same ten examples are picked.
        order = np.random.default_rng(DEFAULT_FEWSHOT_SEED).permutation(len(train))
        fewshots = [record_to_sample(train[i]) for i in order[:FEWSHOT]]
        test = [record_to_sample(r) for r in read_jsonl(data.path("test.jsonl"))]
        return InspectTask(
            name="gsm8k",
            dataset=MemoryDataset(test, name="gsm8k-test"),
            solver=[
                system_message("\n\n".join(sample_to_fewshot(s) for s in fewshots)),
                prompt_template(MATH_PROMPT_TEMPLATE),
                generate(),
            ],
            scorer=match(numeric=True),
        )
