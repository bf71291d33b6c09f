"""`ptb score`: re-score saved model outputs without the model, for audits.

Each saved output is served back as the model's answer to its own sample (inspect's mockllm provider
with a function that looks up the running sample), so the task's real solver chain and scorer run
unchanged: prompt templates, answer parsing, judges, the code sandbox.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from inspect_ai import Task as InspectTask
from inspect_ai.dataset import MemoryDataset
from inspect_ai.log import EvalLog
from inspect_ai.log._samples import sample_active
from inspect_ai.model import ChatMessage, GenerateConfig, ModelOutput, ModelUsage, get_model
from inspect_ai.model._chat_message import ChatMessageAssistant
from inspect_ai.model._model_output import ChatCompletionChoice
from inspect_ai.tool import ToolCall, ToolChoice, ToolInfo
from pydantic import BaseModel, ValidationError, model_validator

from posttrainbench import tasks
from posttrainbench.errors import UserError
from posttrainbench.evaluation.metrics import EvalMetrics
from posttrainbench.evaluation.runner import RunOptions, checked, summarize
from posttrainbench.tasks.base import EvalOptions


class SavedToolCall(BaseModel):
    name: str
    arguments: dict


class SavedOutput(BaseModel):
    """One line of an outputs file: which sample (`id`, or `index` in the full test set) and what the
    model answered (`output` text, or `tool_calls`)."""

    id: str | int | None = None
    index: int | None = None
    output: str | None = None
    tool_calls: list[SavedToolCall] | None = None

    @model_validator(mode="after")
    def _one_of_each(self) -> SavedOutput:
        if (self.id is None) == (self.index is None):
            raise ValueError("give exactly one of `id` and `index`")
        if self.output is None and self.tool_calls is None:
            raise ValueError("give `output` (text) or `tool_calls`")
        return self

    def model_output(self) -> ModelOutput:
        calls = [
            ToolCall(id=f"call_{i}", function=c.name, arguments=c.arguments)
            for i, c in enumerate(self.tool_calls or [])
        ]
        message = ChatMessageAssistant(
            content=self.output or "", tool_calls=calls or None, model="replay", source="generate"
        )
        return ModelOutput(
            model="replay",
            choices=[ChatCompletionChoice(message=message, stop_reason="tool_calls" if calls else "stop")],
            usage=ModelUsage(input_tokens=0, output_tokens=0, total_tokens=0),
        )


def load_outputs(path: Path) -> list[SavedOutput]:
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    out = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(SavedOutput.model_validate(json.loads(line)))
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{n}: not JSON: {e}") from None
        except ValidationError as e:
            reasons = "; ".join(err["msg"] for err in e.errors())
            raise UserError(f"{path}:{n}: not a saved output: {reasons}") from None
    if not out:
        raise UserError(f"{path} holds no outputs")
    return out


def replay(inspect_task: InspectTask, answers: dict[str, ModelOutput], opts: RunOptions) -> EvalLog:
    """Run `inspect_task` (solvers and scorer unchanged) with `answers[sample id]` as the model's output
    for each of its samples."""
    import inspect_ai

    def answer(
        input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice, config: GenerateConfig
    ) -> ModelOutput:
        active = sample_active()
        assert active is not None, "replay outside a running sample"
        return answers[str(active.sample.id)]

    return inspect_ai.eval(
        inspect_task,
        model=get_model("mockllm/replay", custom_outputs=answer),
        log_dir=str(opts.log_dir),
        display=opts.display,
        score_display=False,
    )[0]


def score_outputs(task_name: str, outputs_file: Path, opts: RunOptions) -> EvalMetrics:
    task = tasks.get(task_name)
    saved = load_outputs(outputs_file)
    data = task.data(opts.data_dir)
    inspect_task = task.inspect_task(data, EvalOptions(seed=opts.seed, judge=opts.judge))
    samples = list(inspect_task.dataset)
    by_id = {str(s.id): s for s in samples}
    answers: dict[str, ModelOutput] = {}
    for s in saved:
        if s.index is not None:
            if not 0 <= s.index < len(samples):
                raise UserError(f"index {s.index} is outside the test set (0..{len(samples) - 1})")
            key = str(samples[s.index].id)
        elif str(s.id) in by_id:
            key = str(s.id)
        else:
            raise UserError(f"{task_name} has no sample with id {s.id!r}")
        if key in answers:
            raise UserError(f"sample {key} appears twice in {outputs_file}")
        answers[key] = s.model_output()

    inspect_task.dataset = MemoryDataset(
        [s for s in samples if str(s.id) in answers], name=f"{task_name}-replay"
    )
    started = time.monotonic()
    log = replay(inspect_task, answers, opts)
    return summarize(
        task,
        [checked(log, task_name)],
        data=data.record,
        backend="replay",
        decoding=None,
        template=None,
        model_path=str(outputs_file),
        generation_config=None,
        judge=opts.judge,
        seconds=time.monotonic() - started,
    )
