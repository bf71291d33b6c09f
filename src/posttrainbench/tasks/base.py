"""What every task provides to the harness."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import inspect_ai
from inspect_ai.dataset import Sample
from inspect_ai.model import Model

from posttrainbench.data import DataFile, TaskData, resolve
from posttrainbench.specs import TaskInfo
from posttrainbench.tasks import evaluate_script


@dataclass
class EvalOptions:
    """Evaluation settings a task's inspect Task depends on."""

    seed: int = 0
    judge: str | Model | None = None  # None: the task's info.default_judge


class Task(ABC):
    """A benchmark: its data, its inspect Task, and the files the agent is given."""

    info: TaskInfo
    data_folder: str = ""
    data_files: tuple[DataFile, ...] = ()

    @property
    def package_dir(self) -> Path:
        return Path(str(files(f"posttrainbench.tasks.{self.info.name}")))

    @property
    def benchmark(self) -> str:
        return (self.package_dir / "benchmark.txt").read_text().strip()

    def agent_files(self) -> dict[str, Path | str]:
        """Workspace path -> source file (or text): `evaluate.py` plus everything under `context/`."""
        out: dict[str, Path | str] = {"evaluate.py": evaluate_script.render(self.info, self.benchmark)}
        context = self.package_dir / "context"
        if context.is_dir():
            for f in sorted(context.rglob("*")):
                if f.is_file() and "__pycache__" not in f.parts:
                    out[str(f.relative_to(context))] = f
        return out

    def data(self, data_dir: Path | None = None) -> TaskData:
        """The task's verified data files (local directory or pinned download)."""
        return resolve(self.data_folder or self.info.name, self.data_files, data_dir)

    def judge(self, options: EvalOptions) -> str | Model:
        judge = options.judge or self.info.default_judge
        if judge is None:
            raise ValueError(f"task {self.info.name} has no judge model configured")
        return judge

    @abstractmethod
    def inspect_task(self, data: TaskData, options: EvalOptions) -> inspect_ai.Task:
        """The full test set, in its final order, as an inspect Task (the runner keeps the first
        `--limit` samples). All post-processing of answers happens in the scorer, so that saved
        outputs can be re-scored with the solver replaced."""

    def samples(self, data: TaskData) -> list[Sample]:
        return list(self.inspect_task(data, EvalOptions()).dataset)

    def contamination_keys(self, data: TaskData) -> dict[str, str]:
        """Test item id -> the text whose presence in training data means contamination."""
        return {str(s.id): _input_text(s) for s in self.samples(data)}

    def training_examples(self, workspace: Path) -> list[dict]:
        """The task's allowed training data as prompt/completion chat examples, when it ships any."""
        return []

    def test_examples(self, data: TaskData) -> list[dict]:
        """The test split as prompt/completion chat examples (only the planted cheat uses it)."""
        return [
            {
                "prompt": [{"role": "user", "content": _input_text(s)}],
                "completion": [
                    {"role": "assistant", "content": s.target if isinstance(s.target, str) else ""}
                ],
            }
            for s in self.samples(data)
        ]


def _input_text(sample: Sample) -> str:
    if isinstance(sample.input, str):
        return sample.input
    return "\n".join(m.text for m in sample.input if m.role == "user")
