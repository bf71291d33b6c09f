"""GSM8K: grade-school math word problems, 10-shot, numeric match of the final answer.

inspect_evals' own pieces (record_to_sample, prompt template, `match(numeric=True)`) on the pinned data
files. The ten few-shot examples are `fewshot.json`: the first 10 of the train split after the seeded
permutation inspect_evals' hub loader applies, in its few-shot format (tests check both). They are in
every evaluation's prompt, so the few-shot protocol adds none.
"""

from __future__ import annotations

import re
from pathlib import Path

from inspect_ai import Task as InspectTask
from inspect_ai.dataset import MemoryDataset
from inspect_ai.scorer import match
from inspect_ai.solver import generate, prompt_template, system_message
from inspect_evals.gsm8k.gsm8k import MATH_PROMPT_TEMPLATE, record_to_sample

from posttrainbench.data import DataFile, TaskData, read_jsonl
from posttrainbench.specs import TaskInfo
from posttrainbench.tasks.base import EvalOptions, Task

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
    exemplars_in_prompt = True
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
        test = [record_to_sample(r) for r in read_jsonl(data.path("test.jsonl"))]
        return InspectTask(
            name="gsm8k",
            dataset=MemoryDataset(test, name="gsm8k-test"),
            solver=[
                system_message(self.fewshot().text()),
                prompt_template(MATH_PROMPT_TEMPLATE),
                generate(),
            ],
            scorer=match(numeric=True),
        )

    def training_examples(self, workspace: Path) -> list[dict]:
        """The train split in the evaluation's prompt, answered by its worked solution without the
        calculator annotations (`<<48/2=24>>`) and ending in the `ANSWER: N` line the prompt asks for."""
        examples = []
        for record in read_jsonl(self.data().path("train.jsonl")):
            sample = record_to_sample(record)
            reasoning = re.sub(r"<<[^>]*>>", "", (sample.metadata or {}).get("reasoning", ""))
            examples.append(
                {
                    "prompt": [{"role": "user", "content": MATH_PROMPT_TEMPLATE.format(prompt=sample.input)}],
                    "completion": [{"role": "assistant", "content": f"{reasoning}\nANSWER: {sample.target}"}],
                }
            )
        return examples
