"""`healthbench`: PostTrainBench's 245-conversation HealthBench subsample, graded per rubric criterion.

Records become samples with inspect_evals' `record_to_sample` (the conversation as chat messages, rubrics
and example tags in metadata). The order is the original's: the file's records shuffled with
`random.Random(42)`, so the first N samples are the original's `--limit N`.
"""

from __future__ import annotations

import random
from pathlib import Path

from inspect_ai import Task as InspectTask
from inspect_ai.dataset import MemoryDataset
from inspect_ai.solver import generate
from inspect_evals.healthbench.dataset import record_to_sample
from pydantic import BaseModel

from posttrainbench.data import DataFile, TaskData, read_jsonl
from posttrainbench.specs import TaskInfo
from posttrainbench.tasks.base import EvalOptions, Task
from posttrainbench.tasks.healthbench.grader import rubric_grader

DATA_FILE = "healthbench.jsonl"
SHUFFLE_SEED = 42


class Message(BaseModel):
    role: str
    content: str


class Rubric(BaseModel):
    criterion: str
    points: int
    tags: list[str]


class Record(BaseModel):
    """One HealthBench example (fields the evaluation reads; others are ignored)."""

    prompt_id: str
    prompt: list[Message]
    rubrics: list[Rubric]
    example_tags: list[str]


def load_records(path: Path) -> list[Record]:
    """All records in the file's order."""
    return [Record.model_validate(r) for r in read_jsonl(path)]


class HealthBenchTask(Task):
    info = TaskInfo(
        name="healthbench",
        benchmark="HealthBench",
        description=(
            "245 multi-turn health conversations; an LLM grader checks the final answer against each of "
            "1,873 physician-written rubric criteria; score = points earned / points possible"
        ),
        default_limit=32,
        default_max_tokens=16384,
        retry_max_tokens=(12288, 8192),
        token_flag="--max-new-tokens",
        default_judge="openai/gpt-5-mini",
        test_sets=("openai/healthbench", "simple-evals/healthbench"),
        allowed_training_data=(
            "any data except HealthBench itself: neither these test conversations nor any other "
            "HealthBench conversation, rubric or reference completion"
        ),
    )
    data_folder = "healthbench"
    data_files = (
        DataFile(
            path=DATA_FILE,
            url=(
                "https://raw.githubusercontent.com/aisa-group/PostTrainBench/"
                "9082063a62e10e040f1acacdec2ccfc1467e0c00/src/eval/tasks/healthbench/evaluation_code/data/"
                + DATA_FILE
            ),
            sha256="0febc8f013eb5d91e3b7e31bbbb0284ae6aa5fbd8cab68b81d63fa252837c0b0",
        ),
    )

    def inspect_task(self, data: TaskData, options: EvalOptions) -> InspectTask:
        records = load_records(data.path(DATA_FILE))
        random.Random(SHUFFLE_SEED).shuffle(records)
        samples = [record_to_sample(r.model_dump()) for r in records]
        return InspectTask(
            name=self.info.name,
            dataset=MemoryDataset(samples, name="healthbench-ptb245"),
            solver=generate(),
            scorer=rubric_grader(self.judge(options)),
        )
