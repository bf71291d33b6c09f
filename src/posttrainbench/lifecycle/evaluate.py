"""evaluate: the harness's own copy of the task code scores `final_model` in a fresh process,
on the full test set, retrying with the task's smaller token budgets when an attempt fails.

The base model's zero-shot score (what a missing, unloadable or flagged submission counts as) is
evaluated the same way once per (task, model) and kept in RESULTS/baselines/.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from posttrainbench import models, settings, tasks
from posttrainbench.agents import registry
from posttrainbench.evaluation.metrics import EvalMetrics
from posttrainbench.rundir import RunDir
from posttrainbench.specs import FinalModelState, RunRecord

ATTEMPT_TIMEOUT_S = 8 * 3600


class EvaluationFailed(RuntimeError):
    pass


def evaluate_model(
    task: str,
    model_path: Path,
    out_file: Path,
    log_dir: Path,
    limit: int | None = None,
    judge: str | None = None,
    fewshot: bool = False,
) -> EvalMetrics:
    """Evaluate in a fresh process; on failure retry down the task's token-budget ladder."""
    info = tasks.get(task).info
    log_dir.mkdir(parents=True, exist_ok=True)
    passed = ("PTB_DATA_DIR", "PTB_DATA_MIRROR", "PTB_VLLM_PYTHON")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PTB_", "HF_")) or k in passed}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PTB_HOME=str(settings.ptb_home()))
    failures = []
    for attempt, max_tokens in enumerate((info.default_max_tokens, *info.retry_max_tokens), start=1):
        cmd = [
            sys.executable, "-m", "posttrainbench.evaluation",
            "--task", task,
            "--model-path", str(model_path),
            "--limit", str(limit or -1),
            *(["--judge-model", judge] if judge else []),
            *(["--fewshot"] if fewshot else []),
            "--max-tokens", str(max_tokens),
            "--templates-dir", str(models.TEMPLATES_DIR),
            "--json-output-file", str(out_file),
            "--log-dir", str(log_dir),
        ]  # fmt: skip
        log_file = log_dir / f"attempt_{attempt}.log"
        with log_file.open("w") as log:
            try:
                proc = subprocess.run(
                    cmd, cwd=log_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, timeout=ATTEMPT_TIMEOUT_S,
                )  # fmt: skip
                code = proc.returncode
            except subprocess.TimeoutExpired:
                code = "timeout"
        if code == 0 and out_file.is_file():
            return EvalMetrics.model_validate_json(out_file.read_text())
        tail = log_file.read_text(errors="replace").strip().splitlines()[-1:] or [""]
        failures.append(f"attempt {attempt} (max_tokens={max_tokens}): exit {code}: {tail[0][:300]}")
    raise EvaluationFailed("; ".join(failures))


def judge(record: RunRecord) -> str | None:
    """The final evaluation's judge: the run's own (--judge-model), else the task's default."""
    return record.spec.judge_model or tasks.get(record.spec.task).info.default_judge


def baseline_dir(record: RunRecord) -> Path:
    """One baseline per (task, model) and, where they differ from the defaults, per judge and
    sample limit: a score under another judge or on fewer samples is another number."""
    spec = record.spec
    name = f"{spec.task}__{spec.model}"
    if spec.judge_model and spec.judge_model != tasks.get(spec.task).info.default_judge:
        name += "__judge-" + re.sub(r"[^A-Za-z0-9._-]+", "-", spec.judge_model)
    if spec.eval_limit:
        name += f"__limit-{spec.eval_limit}"
    return Path(record.results_root) / "baselines" / name


def baseline(record: RunRecord) -> EvalMetrics:
    """The base model's score on the task, computed once per results directory."""
    spec = record.spec
    base_dir = baseline_dir(record)
    out = base_dir / "metrics.json"
    if out.is_file():
        return EvalMetrics.model_validate_json(out.read_text())
    snapshot = models.snapshot(record.model_card, settings.model_cache())
    return evaluate_model(spec.task, snapshot, out, base_dir / "eval", spec.eval_limit, judge(record))


def evaluate(run: RunDir) -> EvalMetrics | None:
    """Evaluate the submission (when it is loadable) as its agent declares (the standard protocol, or
    the few-shot one of the few-shot baseline) and make sure the (zero-shot) baseline exists."""
    with run.stage("evaluate"):
        record = run.load()
        baseline(record)
        if record.final_model is None or record.final_model.state != FinalModelState.ok:
            run.metrics_file.unlink(missing_ok=True)
            return None
        return evaluate_model(
            record.spec.task, run.final_model, run.metrics_file, run.eval_dir,
            record.spec.eval_limit, judge(record),
            fewshot=registry.get(record.spec.agent).evaluation == "fewshot",
        )  # fmt: skip
