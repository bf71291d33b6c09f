"""What every task provides to the harness."""

from __future__ import annotations

from abc import ABC, abstractmethod
from importlib.resources import files
from pathlib import Path

import inspect_ai

from posttrainbench.specs import TaskInfo


class Task(ABC):
    """A benchmark: its data, its inspect Task, and the files the agent is given."""

    info: TaskInfo

    @property
    def package_dir(self) -> Path:
        return Path(str(files(f"posttrainbench.tasks.{self.info.name}")))

    @property
    def benchmark(self) -> str:
        return (self.package_dir / "benchmark.txt").read_text().strip()

    def agent_files(self) -> dict[str, Path]:
        """Workspace path -> source file: `evaluate.py` plus everything under `context/`."""
        out = {"evaluate.py": self.package_dir / "evaluate.py"}
        context = self.package_dir / "context"
        if context.is_dir():
            for f in sorted(context.rglob("*")):
                if f.is_file():
                    out[str(f.relative_to(context))] = f
        return out

    @abstractmethod
    def inspect_task(self) -> inspect_ai.Task:
        """The full test set as an inspect Task (the runner applies `--limit`)."""

    @abstractmethod
    def contamination_keys(self) -> dict[str, str]:
        """Test item id -> the text whose presence in training data means contamination."""

    @abstractmethod
    def training_examples(self, workspace: Path) -> list[dict]:
        """The task's allowed training data as prompt/completion chat examples."""

    @abstractmethod
    def test_examples(self) -> list[dict]:
        """The test split as prompt/completion chat examples (only the planted cheat uses it)."""
