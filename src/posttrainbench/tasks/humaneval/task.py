"""HumanEval (164 problems): complete a Python function; pass@1 by running the problem's tests.

inspect_evals' record_to_sample (with its instruction) and `verify()` scorer. The generated code runs
in the `ptb-bwrap` code sandbox (bubblewrap: no network, read-only system, time and memory limits),
not un-sandboxed as in the original.
"""

from __future__ import annotations

from inspect_ai import Task as InspectTask
from inspect_ai.dataset import MemoryDataset
from inspect_ai.solver import generate
from inspect_evals.humaneval.humaneval import record_to_sample, verify

from posttrainbench.data import DataFile, TaskData, read_jsonl
from posttrainbench.evaluation.code_sandbox import code_sandbox
from posttrainbench.specs import TaskInfo
from posttrainbench.tasks.base import EvalOptions, Task


class HumanEvalTask(Task):
    info = TaskInfo(
        name="humaneval",
        benchmark="HumanEval",
        description="HumanEval (164 Python functions), pass@1, tests run in a bubblewrap sandbox",
        default_limit=150,
        default_max_tokens=4000,
        retry_max_tokens=(3000, 2000),
        test_sets=("openai/openai_humaneval", "openai/human-eval"),
        allowed_training_data="anything except the HumanEval problems, solutions and tests",
    )
    data_folder = "humaneval"
    data_files = (
        DataFile(
            path="HumanEval.jsonl.gz",
            url="https://raw.githubusercontent.com/openai/human-eval/6d43fb980f9fee3c892a914eda09951f772ad10d/"
            "data/HumanEval.jsonl.gz",
            sha256="b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef",
        ),
    )

    def inspect_task(self, data: TaskData, options: EvalOptions) -> InspectTask:
        to_sample = record_to_sample()
        samples = [to_sample(r) for r in read_jsonl(data.path("HumanEval.jsonl.gz"))]
        return InspectTask(
            name="humaneval",
            dataset=MemoryDataset(samples, name="humaneval"),
            solver=generate(),
            scorer=verify(),
            sandbox=code_sandbox(),
        )
