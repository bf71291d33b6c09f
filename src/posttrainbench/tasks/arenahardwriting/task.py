"""`arenahardwriting`: Arena-Hard v2.0 creative writing, judged pairwise against Qwen3-1.7B's answers.

The test set is the 250 creative-writing questions of Arena-Hard v2.0, shuffled with `random.Random(42)`
as the original PostTrainBench does, so the first N samples are the original's `--limit N`. The baseline
answers are the ones the original judges against (`model_answer/Qwen3-1.7B.jsonl`).
"""

from __future__ import annotations

import random
from typing import Any

from inspect_ai import Task as InspectTask
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.solver import generate
from pydantic import BaseModel

from posttrainbench.data import DataFile, TaskData, read_jsonl
from posttrainbench.specs import TaskInfo
from posttrainbench.tasks.arenahardwriting.judge import pairwise_judge
from posttrainbench.tasks.base import EvalOptions, Task

QUESTIONS = "question.jsonl"
BASELINE_MODEL = "Qwen3-1.7B"
BASELINE_ANSWERS = f"model_answer/{BASELINE_MODEL}.jsonl"
SHUFFLE_SEED = 42
_UPSTREAM = (
    "https://raw.githubusercontent.com/aisa-group/PostTrainBench/9082063a62e10e040f1acacdec2ccfc1467e0c00/"
    "src/eval/tasks/arenahardwriting/evaluation_code/data/arena-hard-v2.0/"
)


class Question(BaseModel):
    uid: str
    category: str
    prompt: str


class ModelAnswer(BaseModel):
    """One record of a `model_answer/*.jsonl` file; the answer text is the last message's `answer`."""

    uid: str
    model: str
    messages: list[dict[str, Any]]

    @property
    def answer(self) -> str:
        return self.messages[-1]["content"]["answer"]


def load_questions(data: TaskData) -> list[Question]:
    """All questions in the file's order."""
    return [Question.model_validate(r) for r in read_jsonl(data.path(QUESTIONS))]


def load_baseline(data: TaskData) -> dict[str, str]:
    """Question uid -> the baseline model's answer."""
    answers = [ModelAnswer.model_validate(r) for r in read_jsonl(data.path(BASELINE_ANSWERS))]
    return {a.uid: a.answer for a in answers}


class ArenaHardWritingTask(Task):
    info = TaskInfo(
        name="arenahardwriting",
        benchmark="Arena-Hard-v2.0 (Writing)",
        description=(
            "250 creative-writing prompts; an LLM judge compares each answer with Qwen3-1.7B's in two games "
            "(both orders); score = weighted win rate against that baseline"
        ),
        default_limit=32,
        default_max_tokens=16384,
        retry_max_tokens=(12288, 8192),
        token_flag="--max-new-tokens",
        default_judge="openai/gpt-5-mini",
        test_sets=("lmarena-ai/arena-hard-auto", "lmarena/arena-hard-auto"),
        allowed_training_data=(
            "any data you can find or generate, except the Arena-Hard v2.0 questions and any answers or "
            "judgments for them (including the baseline answers the judge compares against)"
        ),
    )
    data_folder = "arenahardwriting"
    data_files = (
        DataFile(
            path=QUESTIONS,
            url=_UPSTREAM + QUESTIONS,
            sha256="f337df1022d723b2062bcc530e8e7fbc367548c31fbc87d0ae668f0b6c7609a5",
        ),
        DataFile(
            path=BASELINE_ANSWERS,
            url=_UPSTREAM + BASELINE_ANSWERS,
            sha256="87a72bb89edfd05fc8dd32152750649e1bab60ba1b62ebcd055610a729023c30",
        ),
    )

    def inspect_task(self, data: TaskData, options: EvalOptions) -> InspectTask:
        questions = load_questions(data)
        baseline = load_baseline(data)
        missing = [q.uid for q in questions if q.uid not in baseline]
        if missing:
            raise ValueError(
                f"{BASELINE_ANSWERS} has no answer for {len(missing)} questions, e.g. {missing[0]}"
            )
        random.Random(SHUFFLE_SEED).shuffle(questions)
        samples = [
            Sample(
                id=q.uid,
                input=q.prompt,
                metadata={"category": q.category, "baseline_answer": baseline[q.uid]},
            )
            for q in questions
        ]
        return InspectTask(
            name=self.info.name,
            dataset=MemoryDataset(samples, name="arena-hard-v2.0-creative-writing"),
            solver=generate(),
            scorer=pairwise_judge(self.judge(options)),
        )
