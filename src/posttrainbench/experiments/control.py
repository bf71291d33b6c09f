"""`ptb submit`, `ptb status` and `ptb resume`: an experiment's runs against its results directory
and its backend's queue. Each run lives in RESULTS/<task>__<model>__<agent>__s<seed>/; earlier attempts
of a retried run move to RESULTS/.attempts/<key>/attempt-N/."""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console
from rich.table import Table

from posttrainbench import backends
from posttrainbench.backends import Backend, Job
from posttrainbench.errors import UserError
from posttrainbench.experiments import spec as experiment
from posttrainbench.experiments.job import Claim, JobSpec, Submission, job_dir, read_model, write_spec
from posttrainbench.experiments.spec import PlannedRun
from posttrainbench.experiments.state import RunState, RunStatus, run_status
from posttrainbench.lifecycle.prepare import check_writable
from posttrainbench.specs import PastAttempt

ATTEMPTS = ".attempts"


class Loaded:
    """An experiment file read and expanded, with its results directory and backend."""

    def __init__(self, path: Path):
        self.path = path
        self.exp, self.runs = experiment.load(path)
        self.root = experiment.results_dir(path, self.exp)
        self.backend: Backend = backends.get(self.exp.backend)

    def statuses(self) -> list[RunStatus]:
        ids = [
            m.job_id
            for r in self.runs
            for m in (read_model(Submission, job_dir(self.root / r.key) / "submission.json"),
                      read_model(Claim, job_dir(self.root / r.key) / "claim.json"))
            if m is not None
        ]  # fmt: skip
        queue = self.backend.queue(ids) if ids else {}
        return [run_status(self.root / r.key, r, queue, self.exp.retry) for r in self.runs]

    def job(self, run: PlannedRun, attempt: int = 1, history=(), mode: str = "run") -> Job:
        spec = JobSpec(experiment=self.exp.name, key=run.key, backend=self.backend.name, attempt=attempt,
                       mode=mode, spec=run.spec, results_root=str(self.root),
                       env=experiment.environment(self.path, self.exp), history=list(history))  # fmt: skip
        return Job(spec, write_spec(self.root / run.key, spec))


def submit(path: Path, console: Console, dry_run: bool = False) -> list[Job]:
    """Submit every run of the matrix that has not been submitted yet."""
    x = Loaded(path)
    check_writable(x.root)
    statuses = x.statuses()
    todo = [r for r, s in zip(x.runs, statuses, strict=True) if s.state == RunState.not_submitted]
    counts = {state: sum(s.state == state for s in statuses) for state in RunState}
    console.print(
        f"[bold]{x.exp.name}[/]: {len(x.runs)} runs on {x.backend.name}, results in {x.root}\n"
        f"  to submit: {len(todo)}; finished {counts[RunState.finished]}, queued "
        f"{counts[RunState.queued]}, running {counts[RunState.running]}, failed {counts[RunState.failed]}"
        + (" (`ptb resume` retries those it may)" if counts[RunState.failed] else ""),
        highlight=False,
    )
    for s in statuses:
        if s.spec_changed and s.state != RunState.not_submitted:
            console.print(
                f"  [yellow]{s.key}: ran with other settings than the file now gives; kept as it is "
                f"(delete its directory to run it again)[/]",
                highlight=False,
            )
    if dry_run:
        _show_plan(x, todo, console)
        return []
    jobs = [x.job(r, attempt=_next_attempt(x.root / r.key)) for r in todo]
    if jobs:
        x.backend.submit(jobs, console)
    return jobs


def _next_attempt(run_dir: Path) -> int:
    """A run whose job spec was written but never submitted keeps its attempt number."""
    job = read_model(JobSpec, job_dir(run_dir) / "spec.json")
    return job.attempt if job else 1


def _show_plan(x: Loaded, runs: list[PlannedRun], console: Console) -> None:
    for r in runs:
        s = r.spec
        console.print(f"  would submit {r.key}: {s.budget_seconds / 3600:g} h, {s.gpus} GPU(s), "
                      f"sandbox {s.sandbox}, network {s.network}", highlight=False)  # fmt: skip


def status(path: Path) -> tuple[Loaded, list[RunStatus]]:
    x = Loaded(path)
    return x, x.statuses()


def show_status(x: Loaded, statuses: list[RunStatus], console: Console) -> None:
    table = Table(title=f"{x.exp.name} ({x.backend.name}, {x.root})", box=None, header_style="bold")
    table.add_column("run", no_wrap=True)
    for col in ("state", "attempt", "job", "detail", "resume"):
        table.add_column(col)
    colour = {RunState.finished: "green", RunState.failed: "red", RunState.running: "cyan"}
    for s in statuses:
        state = f"[{colour.get(s.state, 'white')}]{s.state.value}[/]"
        detail = ", ".join(x for x in (s.failure_class.value if s.failure_class else "", s.detail) if x)
        attempt = f"{s.attempt}/{x.exp.retry.max_attempts}" if s.attempt else "-"
        job = f"pid {s.job_id.split(':')[2]}" if (s.job_id or "").startswith("local:") else s.job_id
        table.add_row(s.key, state, attempt, job or "-", detail, s.resume or "")
    console.print(table)
    counts = {state: sum(s.state == state for s in statuses) for state in RunState}
    console.print(", ".join(f"{n} {state.value}" for state, n in counts.items() if n))


def resume(path: Path, console: Console, dry_run: bool = False) -> list[Job]:
    """Submit again the failed runs the retry rules allow: a fresh attempt in a fresh directory (the
    old one moves to .attempts/), or, after a failed evaluation, only the evaluation again."""
    x = Loaded(path)
    jobs = []
    for run, s in zip(x.runs, x.statuses(), strict=True):
        if s.state != RunState.failed:
            continue
        why = s.failure_class.value if s.failure_class else "failed"
        if s.resume in ("no", "exhausted"):
            reason = (f"not retried ({why} is not in retry.on)" if s.resume == "no"
                      else f"not retried: attempt {s.attempt} of {x.exp.retry.max_attempts} used")  # fmt: skip
            console.print(f"  {s.key}: {reason}", highlight=False)
            continue
        verb = "evaluating again" if s.resume == "evaluate" else "new attempt"
        console.print(
            f"  {s.key}: {why} -> {verb} ({s.attempt + 1}/{x.exp.retry.max_attempts})", highlight=False
        )
        if not dry_run:
            jobs.append(_retry(x, run, s))
    if not jobs:
        console.print("nothing to resume" if not dry_run else "")
        return []
    x.backend.submit(jobs, console)
    return jobs


def _retry(x: Loaded, run: PlannedRun, s: RunStatus) -> Job:
    run_dir = x.root / run.key
    old = JobSpec.model_validate_json((job_dir(run_dir) / "spec.json").read_text())
    run = PlannedRun(key=run.key, spec=old.spec)  # the same run again, whatever the file says now
    past = PastAttempt(attempt=s.attempt, failure_class=s.failure_class, detail=s.detail, job_id=s.job_id)
    if s.resume == "evaluate":
        claim = job_dir(run_dir) / "claim.json"
        if claim.exists():
            os.replace(claim, job_dir(run_dir) / f"claim.{s.attempt}.json")
        return x.job(run, s.attempt + 1, [*old.history, past], mode="evaluate")
    dest = x.root / ATTEMPTS / run.key / f"attempt-{s.attempt}"
    if dest.exists():
        raise UserError(f"{dest} exists already; move it away to retry {run.key}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.rename(run_dir, dest)
    past.moved_to = str(dest.relative_to(x.root))
    return x.job(run, s.attempt + 1, [*old.history, past])
