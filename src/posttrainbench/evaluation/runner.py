"""Run a task's inspect evaluation on a local model directory and summarise it as EvalMetrics."""

from __future__ import annotations

import time
from pathlib import Path

from posttrainbench import models, tasks
from posttrainbench.evaluation.metrics import Decoding, EvalMetrics


def evaluate(
    task_name: str,
    model_path: Path,
    *,
    limit: int | None,
    max_tokens: int,
    templates_dir: Path,
    max_connections: int,
    log_dir: Path,
    display: str = "plain",
) -> EvalMetrics:
    """Evaluate with greedy decoding and the family's chat template (from config.json)."""
    import inspect_ai
    from inspect_ai.model import get_model

    task = tasks.get(task_name)
    model_path = model_path.resolve()
    if not (model_path / "config.json").is_file():
        raise FileNotFoundError(f"{model_path} has no config.json: not a model directory")
    template = models.template_file(models.family_of(model_path), templates_dir)
    started = time.monotonic()
    # Decoding is fixed here: greedy, explicit token budget. The hf backend passes do_sample=False,
    # so sampling settings in a submission's generation_config.json do not apply.
    model = get_model(
        "hf/local",
        model_path=str(model_path),
        chat_template=template.read_text(),
        do_sample=False,
        device="cuda:0" if _cuda() else "cpu",
        batch_size=max_connections,
    )
    log = inspect_ai.eval(
        task.inspect_task(),
        model=model,
        limit=limit,
        max_tokens=max_tokens,
        max_connections=max_connections,
        log_dir=str(log_dir),
        display=display,
        score_display=False,
    )[0]
    if log.status != "success" or log.results is None:
        error = log.error.message if log.error else log.status
        raise RuntimeError(f"evaluation of {model_path} on {task_name} failed: {error}")
    score = log.results.scores[0]
    values = {name: float(m.value) for name, m in score.metrics.items()}
    return EvalMetrics(
        task=task_name,
        score=values["accuracy"],
        stderr=values.get("stderr"),
        n=log.results.completed_samples,
        metrics=values,
        backend="hf",
        decoding=Decoding(max_tokens=max_tokens),
        template=template.name,
        model_path=str(model_path),
        generation_config_ignored=(model_path / "generation_config.json").is_file(),
        seconds=round(time.monotonic() - started, 2),
        log_file=log.location,
    )


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
