"""record: read the stages' outputs and write the run's outcome and tool versions into run.json."""

from __future__ import annotations

import platform
import shutil
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path

from posttrainbench import tasks
from posttrainbench.agents import registry
from posttrainbench.evaluation.metrics import EvalMetrics
from posttrainbench.lifecycle.evaluate import baseline_dir
from posttrainbench.provision import images
from posttrainbench.redact import Redactor
from posttrainbench.rundir import RunDir
from posttrainbench.sandbox.cache_layer import CacheLayer
from posttrainbench.specs import FailureClass, FinalModelState, Outcome, RunRecord, SolveEnd

PACKAGES = ("posttrainbench", "torch", "transformers", "trl", "inspect_ai", "inspect_evals", "pydantic")


@cache
def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    bwrap = shutil.which("bwrap")
    if bwrap:
        out["bwrap"] = subprocess.run([bwrap, "--version"], capture_output=True, text=True).stdout.strip()
    return out | images.identity()


def plugin_versions(task: str, agent: str) -> dict[str, str]:
    """The packages that brought the run's task or agent, when they are plugins."""
    origins = [tasks.origin(task), registry.origin(agent)]
    return {o.package: o.version for o in origins if not o.builtin}


def _score(path: Path) -> float | None:
    return EvalMetrics.model_validate_json(path.read_text()).score if path.is_file() else None


def outcome(run: RunDir, record: RunRecord) -> Outcome:
    base = _score(baseline_dir(record) / "metrics.json")
    final = _score(run.metrics_file)
    decision = record.integrity
    failed_stages = {name for name, t in record.stages.items() if not t.ok}
    fm = record.final_model

    failure = None
    if record.solve and record.solve.end == SolveEnd.failed_to_start:
        failure = FailureClass.agent_failed_to_start
    elif record.solve and record.solve.agent_failure:  # what ended the agent's work, on its side
        failure = FailureClass(record.solve.agent_failure.failure.value)
    elif record.solve and record.solve.end == SolveEnd.crashed:
        failure = FailureClass.agent_crashed
    elif fm and fm.state == FinalModelState.missing:
        failure = FailureClass.no_final_model
    elif fm and fm.state == FinalModelState.unloadable:
        failure = FailureClass.unloadable_final_model
    elif "evaluate" in failed_stages:
        failure = FailureClass.evaluation_failed
    elif failed_stages - {"record"}:
        failure = FailureClass.harness_error

    if decision and decision.flagged:
        counted, reason = base, f"flagged ({'; '.join(decision.reasons)}): counts as the base model"
    elif final is not None:
        counted, reason = final, "final model score"
    elif fm and fm.state != FinalModelState.ok:
        counted, reason = base, f"{fm.state.value} final model ({fm.reason}): counts as the base model"
    else:
        counted, reason = base, "no final evaluation: counts as the base model"

    if record.spec.eval_limit:
        reason += f"; smoke run: scored on the first {record.spec.eval_limit} samples only, not comparable"
    complete = not (failed_stages - {"record"}) and {"solve", "collect", "check", "evaluate"} <= set(
        record.stages
    )
    return Outcome(
        status="complete" if complete else "incomplete",
        failure_class=failure,
        flagged=bool(decision and decision.flagged),
        base_score=base,
        final_score=final,
        counted_score=counted,
        counted_reason=reason,
        minutes_used=round(record.solve.seconds / 60, 2) if record.solve else None,
    )


def record(run: RunDir) -> RunRecord:
    """Write the outcome, then redact what the later stages saved: the record, metrics, integrity
    evidence and the evaluation logs of the run and its baseline. The workspace and final_model were
    redacted when the agent stopped (the final model's hashes are taken from that state)."""
    with run.stage("record"):
        rec = run.load()
        rec.outcome = outcome(run, rec)
        rec.versions = versions() | plugin_versions(rec.spec.task, rec.spec.agent)
        run.save(rec)
        redactor = Redactor.from_environment()
        redactor.tree(run.path, skip=[run.workspace, run.final_model, CacheLayer.root_of(run.agent_dir)])
        redactor.tree(baseline_dir(rec))
    return run.load()
