"""Where each run of an experiment stands, read from its run directory and the scheduler's queue:
not submitted, queued, running (with time left), finished (with its score) or failed (with its
failure class and attempt), and whether `ptb resume` would retry it."""

from __future__ import annotations

import time
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from posttrainbench.experiments.job import Claim, JobSpec, Submission, job_dir, read_model
from posttrainbench.experiments.spec import PlannedRun, Retry
from posttrainbench.rundir import RunDir
from posttrainbench.specs import FailureClass, RunRecord, clock


class RunState(StrEnum):
    not_submitted = "not submitted"
    queued = "queued"
    running = "running"
    finished = "finished"
    failed = "failed"


Action = Literal["retry", "evaluate", "no", "exhausted"]


class RunStatus(BaseModel):
    key: str
    state: RunState
    attempt: int = 0
    job_id: str | None = None
    failure_class: FailureClass | None = None
    detail: str = ""
    score: float | None = None
    flagged: bool = False
    resume: Action | None = None  # failed runs: what `ptb resume` does with it
    spec_changed: bool = False  # the experiment file now asks for other settings than it ran with


def _load(run: RunDir) -> RunRecord | None:
    try:
        return run.load()
    except (OSError, ValueError):
        return None


def run_status(run_dir: Path, planned: PlannedRun, queue: dict[str, str], retry: Retry) -> RunStatus:
    """`queue`: the scheduler's view (job id -> queued|running|held), taken before the files are read,
    so a job that ends in between is seen finished rather than lost."""
    job = read_model(JobSpec, job_dir(run_dir) / "spec.json")
    sub = read_model(Submission, job_dir(run_dir) / "submission.json")
    if job is None or sub is None or sub.attempt != job.attempt:
        return RunStatus(key=planned.key, state=RunState.not_submitted, attempt=job.attempt - 1 if job else 0)
    run = RunDir(run_dir)
    rec = _load(run) if run.record_file.is_file() else None
    claim = read_model(Claim, job_dir(run_dir) / "claim.json")
    status = RunStatus(key=planned.key, state=RunState.running, attempt=job.attempt, job_id=sub.job_id,
                       spec_changed=job.spec != planned.spec)  # fmt: skip
    done = rec and rec.outcome and (rec.job.attempt if rec.job else 1) >= job.attempt
    if done:
        o = rec.outcome
        status.score, status.flagged, status.failure_class = o.counted_score, o.flagged, o.failure_class
        status.state = RunState.failed if o.failure_class or o.status != "complete" else RunState.finished
        if status.state == RunState.failed and status.failure_class is None:
            status.failure_class = FailureClass.harness_error
        score = "-" if o.counted_score is None else f"{o.counted_score:.3f}"
        status.detail = f"score {score}" + (" (flagged)" if o.flagged else "")
    elif claim and claim.attempt == job.attempt:
        status.job_id = claim.job_id or sub.job_id
        if queue.get(status.job_id) or queue.get(sub.job_id):
            status.detail = _progress(rec, claim, job)
        else:
            status.state, status.failure_class = RunState.failed, FailureClass.job_lost
            stopped = rec.job.terminated if rec and rec.job and rec.job.terminated else ""
            status.detail = (
                f"job stopped by {stopped} before the run ended" if stopped
                else f"job ended without a record (killed?); see {job_dir(run_dir)}"
            )  # fmt: skip
    elif queue.get(sub.job_id):
        state = queue.get(sub.job_id)
        status.state = RunState.queued
        status.detail = (
            "held by the scheduler" if state == "held" else ("starting" if state == "running" else "")
        )
    else:
        status.state, status.failure_class = RunState.failed, FailureClass.never_started
        status.detail = f"job {sub.job_id} left the queue before it started; see {job_dir(run_dir)}"
    if status.state == RunState.failed:
        status.resume = action(status, retry)
    return status


def _progress(rec: RunRecord | None, claim: Claim, job: JobSpec) -> str:
    if job.mode == "evaluate":
        return "evaluating again"
    if rec and "solve" in rec.stages:
        stage = next((s for s in ("evaluate", "judge", "check", "collect") if s in rec.stages), "solve")
        return f"after {stage}"
    started = datetime.fromisoformat(claim.claimed_at).timestamp()
    return f"solving, ~{clock(started + job.spec.budget_seconds - time.time())} left"


def action(status: RunStatus, retry: Retry) -> Action:
    if status.failure_class not in retry.on:
        return "no"
    if status.attempt >= retry.max_attempts:
        return "exhausted"
    return "evaluate" if status.failure_class == FailureClass.evaluation_failed else "retry"
