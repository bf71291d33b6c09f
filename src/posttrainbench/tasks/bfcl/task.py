"""BFCL `exec_simple` (100 items): one function call per question, checked against the ground truth.

The category the original scored (its pinned inspect_evals predates BFCL's multi-category default).
inspect_evals' record loading, record_to_sample, solver (tools offered natively, calls captured, not
executed) and scorer (BFCL's AST matcher against the parsed ground-truth call) on the pinned files.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from inspect_ai import Task as InspectTask
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.tool import ToolCall
from inspect_evals.bfcl.bfcl import bfcl_scorer, bfcl_solver, single_turn_record_to_sample
from inspect_evals.bfcl.data import load_records_by_category
from inspect_evals.bfcl.utils.task_categories import CATEGORIES

from posttrainbench.data import DataFile, TaskData
from posttrainbench.specs import TaskInfo
from posttrainbench.tasks.base import EvalOptions, Task

CATEGORY = "exec_simple"
QUESTIONS = "BFCL_v4_exec_simple.json"
ANSWERS = "possible_answer/BFCL_v4_exec_simple.json"
_ORIGIN = (
    "https://raw.githubusercontent.com/ShishirPatil/gorilla/dac44e7ac9db5ff26a01ab0c1ec5de5a1e703b7a/"
    "berkeley-function-call-leaderboard/bfcl_eval/data/unused_datasets"
)


class BFCLTask(Task):
    info = TaskInfo(
        name="bfcl",
        benchmark="Berkeley Function Calling Leaderboard (BFCL)",
        description="BFCL exec_simple (100 items): call the one right function with the right arguments",
        default_limit=None,
        default_max_tokens=16000,
        retry_max_tokens=(12000, 8000),
        test_sets=(
            "gorilla-llm/Berkeley-Function-Calling-Leaderboard",
            "BFCL_v3_exec_simple",
            "BFCL_v4_exec_simple",
        ),
        allowed_training_data="anything except the BFCL exec_simple questions and their answers",
    )
    data_folder = "bfcl"
    data_files = (
        DataFile(
            path=QUESTIONS,
            url=f"{_ORIGIN}/question/{QUESTIONS}",
            sha256="32ee3959e8e3f92fac1e90e55bf5fa41c759bfef4e6a2d88421af527a859d0a4",
        ),
        DataFile(
            path=ANSWERS,
            url=f"{_ORIGIN}/{ANSWERS}",
            sha256="4584017c92ae9a2407eac25bcec2496233a32a08182301b15f65538aa575b5a7",
        ),
    )

    def gold_answer(self, sample: Sample) -> list[ToolCall]:
        return _gold_calls(sample)

    def inspect_task(self, data: TaskData, options: EvalOptions) -> InspectTask:
        records = _load(data)
        samples = [single_turn_record_to_sample(records[k]) for k in sorted(records, key=_index)]
        return InspectTask(
            name="bfcl",
            dataset=MemoryDataset(samples, name="bfcl-exec_simple"),
            solver=bfcl_solver(),
            scorer=bfcl_scorer(),
        )


def _gold_calls(sample: Sample) -> list[ToolCall]:
    """The ground truth as tool calls: each function with the first allowed value of each argument
    ("" in BFCL's list of allowed values means the argument may be left out)."""
    calls = []
    for n, call in enumerate(sample.metadata["parsed_ground_truth"]):
        ((name, arguments),) = call.items()
        chosen = {
            arg: next(v for v in values if v != "") for arg, values in arguments.items() if values != [""]
        }
        calls.append(ToolCall(id=f"gold_{n}", function=name, arguments=chosen))
    return calls


def _load(data: TaskData) -> dict:
    """inspect_evals' loader, given the file layout it expects (links to the verified files)."""
    config = CATEGORIES[CATEGORY]
    with tempfile.TemporaryDirectory(prefix="ptb-bfcl-") as tmp:
        for rel, name in ((config.filename, QUESTIONS), (config.ground_truth_filename, ANSWERS)):
            link = Path(tmp) / rel
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(data.path(name).resolve())
        return load_records_by_category(CATEGORY, cache_dir=Path(tmp))


def _index(record_id: str) -> int:
    return int(record_id.rsplit("_", 1)[1])
