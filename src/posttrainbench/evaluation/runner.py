"""Evaluate a model directory on one or more tasks with one model load, and summarise each task's
inspect log as `EvalMetrics` (the `metrics.json` contract)."""

from __future__ import annotations

import hashlib
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspect_ai.log import EvalLog
from inspect_ai.model import GenerateConfig, Model

from posttrainbench import models, tasks
from posttrainbench.data import DataRecord
from posttrainbench.evaluation.backends import BackendName, serve
from posttrainbench.evaluation.metrics import (
    Decoding,
    EvalMetrics,
    FewShotInfo,
    GenerationConfigInfo,
    Sampling,
)
from posttrainbench.tasks.base import EvalOptions, Task

# The few-shot protocol's sampling: Qwen's recommendation for its base models, as in the original's
# few-shot baselines.
FEWSHOT_SAMPLING = Sampling(temperature=0.6, top_p=0.95, top_k=20)


@dataclass
class RunOptions:
    backend: BackendName = "auto"
    backend_url: str | None = None
    limit: int | None = None  # None: the full test set
    max_tokens: int | None = None  # None: each task's own budget
    max_connections: int | None = None  # None: each task's own
    gpu_memory_utilization: float = 0.8
    templates_dir: Path = models.TEMPLATES_DIR
    data_dir: Path | None = None
    judge: str | Model | None = None
    epochs: int = 1
    seed: int = 0
    # The few-shot protocol for base models: each task's exemplars, FEWSHOT_SAMPLING, plain template.
    fewshot: bool = False
    log_dir: Path = field(default_factory=lambda: Path("logs"))
    display: str = "plain"


class EvaluationError(RuntimeError):
    pass


def evaluate(task_names: list[str], model_path: Path, opts: RunOptions) -> list[EvalMetrics]:
    """Evaluate with greedy decoding and the family's chat template (from config.json), or under the
    few-shot protocol (`opts.fewshot`) with exemplars, sampling and the plain template."""
    import inspect_ai

    selected = [tasks.get(name) for name in task_names]
    model_path = model_path.resolve()
    if not (model_path / "config.json").is_file():
        raise FileNotFoundError(f"{model_path} has no config.json: not a model directory")
    template = models.template_file(
        models.PLAIN_TEMPLATE if opts.fewshot else models.family_of(model_path), opts.templates_dir
    )
    datas = {t.info.name: t.data(opts.data_dir) for t in selected}  # fail on data before loading the model
    batch = opts.max_connections or max(t.info.default_max_connections for t in selected)
    out = []
    with serve(
        opts.backend,
        model_path,
        template,
        batch_size=batch,
        gpu_memory_utilization=opts.gpu_memory_utilization,
        url=opts.backend_url,
        log_dir=opts.log_dir,
        sample=opts.fewshot,
    ) as served:
        config_args, not_applied = decoding_settings(served.backend, opts.fewshot)
        for task in selected:
            started = time.monotonic()
            max_tokens = opts.max_tokens or task.info.default_max_tokens
            build = task.fewshot_task if opts.fewshot else task.inspect_task
            logs = []
            for epoch in range(opts.epochs):
                seed = opts.seed + epoch
                inspect_task = build(datas[task.info.name], EvalOptions(seed=seed, judge=opts.judge))
                inspect_task.config = GenerateConfig(max_tokens=max_tokens, seed=seed, **config_args)
                log = inspect_ai.eval(
                    inspect_task,
                    model=served.model,
                    limit=opts.limit,
                    max_connections=opts.max_connections or task.info.default_max_connections,
                    log_dir=str(opts.log_dir),
                    display=opts.display,
                    score_display=False,
                )[0]
                logs.append(checked(log, task.info.name))
            out.append(
                summarize(
                    task,
                    logs,
                    data=datas[task.info.name].record,
                    backend=served.backend,
                    decoding=Decoding(
                        temperature=config_args["temperature"] or 0.0,
                        do_sample=bool(config_args["temperature"]),
                        max_tokens=max_tokens,
                        seed=opts.seed,
                    ),
                    fewshot=fewshot_info(task, not_applied) if opts.fewshot else None,
                    template=served.template,
                    model_path=str(model_path),
                    generation_config=generation_config_info(model_path),
                    judge=opts.judge,
                    seconds=time.monotonic() - started,
                )
            )
    return out


def decoding_settings(backend: str, fewshot: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """The GenerateConfig fields that set decoding on the backend: greedy or, under the few-shot
    protocol, FEWSHOT_SAMPLING as far as the backend applies it; and each sampling setting it cannot
    apply, with why."""
    greedy = {"temperature": None if backend == "hf" else 0.0}  # hf: greedy by its do_sample=False
    if not fewshot:
        return greedy, {}
    s = FEWSHOT_SAMPLING
    if backend == "vllm":
        return {"temperature": s.temperature, "top_p": s.top_p, "extra_body": {"top_k": s.top_k}}, {}
    if backend == "openai":
        return {"temperature": s.temperature, "top_p": s.top_p}, {
            "top_k": "not an OpenAI API parameter: the server's default applies"
        }
    return {"temperature": s.temperature, "top_p": s.top_p, "top_k": s.top_k}, {}  # hf, set up to sample


def fewshot_info(task: Task, not_applied: dict[str, str]) -> FewShotInfo:
    fewshot = task.fewshot()
    return FewShotInfo(
        exemplars=len(fewshot.exemplars),
        exemplar_source=fewshot.source,
        sampling=FEWSHOT_SAMPLING,
        not_applied=not_applied,
    )


def checked(log: EvalLog, task_name: str) -> EvalLog:
    if log.status != "success" or log.results is None:
        error = log.error.message if log.error else log.status
        raise EvaluationError(f"evaluation on {task_name} failed: {error}")
    return log


def generation_config_info(model_path: Path) -> GenerationConfigInfo:
    path = model_path / "generation_config.json"
    if not path.is_file():
        return GenerationConfigInfo(present=False)
    return GenerationConfigInfo(present=True, sha256=hashlib.sha256(path.read_bytes()).hexdigest())


def flat_metrics(log: EvalLog) -> dict[str, float]:
    """The first scorer's metrics, nested values flattened as `outer/inner`."""
    assert log.results is not None
    values: dict[str, float] = {}

    def put(key: str, value: object) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                put(f"{key}/{k}", v)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            values[key] = float(value)

    for name, metric in log.results.scores[0].metrics.items():
        put(name, metric.value)
    return values


def summarize(
    task: Task,
    logs: list[EvalLog],
    *,
    data: DataRecord,
    backend: str,
    decoding: Decoding | None,
    fewshot: FewShotInfo | None = None,
    template: str | None,
    model_path: str,
    generation_config: GenerationConfigInfo | None,
    judge: str | Model | None,
    seconds: float,
) -> EvalMetrics:
    """One task's metrics; with several epochs (seeds) the score is their mean and the stderr is
    the standard error across epochs."""
    per_epoch = [flat_metrics(log) for log in logs]
    primary = task.info.primary_metric
    for values in per_epoch:
        if primary not in values:
            raise EvaluationError(f"{task.info.name}: the scorer reported no '{primary}' ({sorted(values)})")
    scores = [values[primary] for values in per_epoch]
    if len(logs) > 1:
        metrics = {k: statistics.fmean(v[k] for v in per_epoch) for k in per_epoch[0]}
        stderr: float | None = statistics.stdev(scores) / math.sqrt(len(scores))
    else:
        metrics = per_epoch[0]
        stderr = metrics.get("stderr")
    judged = task.info.default_judge is not None
    judge_name = None
    judge_calls = judge_failures = None
    if judged:
        chosen = judge or task.info.default_judge
        judge_name = chosen if isinstance(chosen, str) else str(chosen)
        judge_calls, judge_failures = _count(per_epoch, "judge_calls"), _count(per_epoch, "judge_failures")
        if judge_calls and judge_failures == judge_calls:
            # Nothing was graded: a score here would be an artefact of the judge, not of the model.
            raise EvaluationError(
                f"{task.info.name}: all {judge_calls} calls to the judge {judge_name} failed; "
                f"see {logs[-1].location} for the errors (credentials? model name?)"
            )
    return EvalMetrics(
        task=task.info.name,
        score=statistics.fmean(scores),
        stderr=stderr,
        n=sum(log.results.completed_samples for log in logs if log.results) // len(logs),
        metrics=metrics,
        backend=backend,
        decoding=decoding,
        fewshot=fewshot,
        template=template,
        model_path=model_path,
        generation_config=generation_config,
        data=data,
        judge_model=judge_name,
        judge_calls=judge_calls,
        judge_failures=judge_failures,
        epochs=len(logs),
        epoch_scores=scores,
        seconds=round(seconds, 2),
        log_files=[log.location for log in logs],
    )


def _count(per_epoch: list[dict[str, float]], key: str) -> int | None:
    if not all(key in v for v in per_epoch):
        return None
    return int(sum(v[key] for v in per_epoch))
