"""What every task provides to the harness."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import inspect_ai
from inspect_ai.dataset import Sample
from inspect_ai.model import ChatMessageSystem, Model
from inspect_ai.solver import Generate, Solver, TaskState, chain, solver
from inspect_ai.tool import ToolCall
from pydantic import BaseModel

from posttrainbench.data import DataFile, TaskData, resolve
from posttrainbench.specs import TaskInfo
from posttrainbench.tasks import evaluate_script


@dataclass
class EvalOptions:
    """Evaluation settings a task's inspect Task depends on."""

    seed: int = 0
    judge: str | Model | None = None  # None: the task's info.default_judge


class Exemplar(BaseModel):
    """One worked example: a prompt worded as the task words its own, and the answer it deserves."""

    prompt: str
    response: str


class FewShot(BaseModel):
    """A task's `fewshot.json`: the worked examples the few-shot protocol shows before each sample."""

    source: str  # where the exemplars come from, and how they were chosen
    exemplars: list[Exemplar]

    def text(self) -> str:
        """Each prompt followed by its response, a blank line between all of them: the shape a plain
        (base-model) prompt takes, so the sample's answer follows its prompt as the exemplars' do."""
        return "\n\n".join(f"{e.prompt}\n\n{e.response}" for e in self.exemplars)


@solver
def prepend_system(text: str) -> Solver:
    """Put `text` first in the conversation, as a system message (no template formatting)."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        state.messages.insert(0, ChatMessageSystem(content=text))
        return state

    return solve


class Task(ABC):
    """A benchmark: its data, its inspect Task, and the files the agent is given."""

    info: TaskInfo
    data_folder: str = ""
    data_files: tuple[DataFile, ...] = ()
    # The task's own prompt already shows its exemplars (GSM8K is 10-shot by protocol).
    exemplars_in_prompt: bool = False
    # The expected score of answering at random (a 4-choice test: 0.25); `ptb validate task` asks the
    # instruct models to be significantly above it.
    chance: float = 0.0

    @property
    def package_dir(self) -> Path:
        """The folder of the module that defines the task class: its benchmark.txt, fewshot.json and
        context/ sit next to it (also for a task from another package)."""
        return Path(inspect.getfile(type(self))).parent

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

    def fewshot(self) -> FewShot:
        path = self.package_dir / "fewshot.json"
        if not path.is_file():  # a task without exemplars: the few-shot protocol is zero-shot for it
            return FewShot(source="none: the task has no fewshot.json", exemplars=[])
        return FewShot.model_validate_json(path.read_text())

    def fewshot_task(self, data: TaskData, options: EvalOptions) -> inspect_ai.Task:
        """`inspect_task` under the few-shot protocol: the exemplars in front of each sample, as a system
        message (it leaves the task's own prompt solvers, which read the first user message, as they are)."""
        task = self.inspect_task(data, options)
        if self.fewshot().exemplars and not self.exemplars_in_prompt:
            task.solver = chain(prepend_system(self.fewshot().text()), task.solver)
        return task

    def gold_answer(self, sample: Sample) -> str | list[ToolCall]:
        """A completion (or the tool calls) the scorer must grade fully correct (`ptb validate task` checks
        it does): by default the target itself; tasks whose scorer wants more (an answer line, a call) say so."""
        return sample.target if isinstance(sample.target, str) else sample.target[0]

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
