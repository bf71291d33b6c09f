"""`ptb job SPEC`: what a scheduler job runs. It claims its run directory atomically, runs the run
(or, for a retry of a failed evaluation, only its evaluation) and records the job in run.json.

A job that finds its run finished, or claimed by another job, exits at once without touching it. A job
stopped by a signal (the scheduler's time limit, preemption, scancel) notes the signal in run.json; one
killed outright leaves its claim without an outcome, which `ptb status` reports as `job_lost` once the
scheduler no longer knows the job."""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel
from rich.console import Console

from posttrainbench.rundir import RunDir, write_json_atomic
from posttrainbench.specs import JobInfo, PastAttempt, RunSpec, utcnow

JOB_DIR = "job"
M = TypeVar("M", bound=BaseModel)


class JobSpec(BaseModel):
    """RUN_DIR/job/spec.json: everything a job needs, written at submission."""

    experiment: str
    key: str
    backend: str
    attempt: int = 1
    mode: Literal["run", "evaluate"] = "run"
    spec: RunSpec
    results_root: str
    env: dict[str, str] = {}  # PTB_HOME, PTB_MODEL_CACHE, PTB_AGENTS_DIR from the experiment's paths
    history: list[PastAttempt] = []


class Claim(BaseModel):
    """RUN_DIR/job/claim.json, created exclusively by the one job that runs this attempt."""

    attempt: int
    job_id: str
    host: str
    pid: int
    claimed_at: str


class Submission(BaseModel):
    """RUN_DIR/job/submission.json: the backend's job for the current attempt."""

    backend: str
    job_id: str
    attempt: int
    submitted_at: str


def job_dir(run_dir: Path) -> Path:
    return run_dir / JOB_DIR


def read_model(cls: type[M], path: Path) -> M | None:
    try:
        return cls.model_validate_json(path.read_text())
    except (OSError, ValueError):
        return None


def current_job_id() -> str:
    """The scheduler's id for this job (HTCondor's comes in PTB_JOB_ID, set by the submit description);
    a job started by the local backend, or by hand, is named by its host, pid and start time."""
    from posttrainbench.backends.local import local_job_id

    given = os.environ.get("PTB_JOB_ID")
    if given == "local":
        return local_job_id(os.getpid())
    return given or os.environ.get("SLURM_JOB_ID") or local_job_id(os.getpid())


def claim(run_dir: Path, attempt: int) -> Claim | None:
    """Create claim.json with O_EXCL: exactly one caller gets the claim; the others get None."""
    mine = Claim(attempt=attempt, job_id=current_job_id(), host=socket.gethostname(), pid=os.getpid(),
                 claimed_at=utcnow())  # fmt: skip
    path = job_dir(run_dir) / "claim.json"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return None
    with os.fdopen(fd, "w") as f:
        f.write(mine.model_dump_json(indent=2) + "\n")
    return mine


class Terminated(BaseException):
    """Raised in the main thread when the job receives SIGTERM (or SIGINT): the stages record it."""

    def __init__(self, signum: int):
        super().__init__(f"job stopped by {signal.Signals(signum).name}")
        self.signum = signum


def _raise(signum: int, _frame: object) -> None:
    raise Terminated(signum)


def finished(run: RunDir, attempt: int) -> bool:
    if not run.record_file.is_file():
        return False
    rec = run.load()
    return rec.outcome is not None and (rec.job.attempt if rec.job else 1) >= attempt


def run_job(spec_file: Path, console: Console) -> int:
    """Run the job described by RUN_DIR/job/spec.json; the exit code is 0 unless the job was stopped."""
    from posttrainbench.lifecycle.evaluate import evaluate
    from posttrainbench.lifecycle.pipeline import execute, run_stage
    from posttrainbench.lifecycle.prepare import prepare
    from posttrainbench.lifecycle.record import record

    job = JobSpec.model_validate_json(spec_file.read_text())
    run = RunDir(spec_file.resolve().parent.parent)
    if finished(run, job.attempt):
        console.print(f"{job.key}: already finished (run.json has its outcome); nothing to do")
        return 0
    mine = claim(run.path, job.attempt)
    if mine is None:
        other = read_model(Claim, job_dir(run.path) / "claim.json")
        who = f"job {other.job_id} on {other.host} since {other.claimed_at}" if other else "another job"
        console.print(f"{job.key}: attempt {job.attempt} is claimed by {who}; not touching it")
        return 0
    os.environ.update(job.env)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _raise)
    info = JobInfo(experiment=job.experiment, key=job.key, attempt=job.attempt, mode=job.mode,
                   backend=job.backend, job_id=mine.job_id, host=mine.host, history=job.history)  # fmt: skip
    console.print(f"{job.key}: attempt {job.attempt} ({job.mode}) as job {mine.job_id} on {mine.host}")
    try:
        if job.mode == "run":
            prepare(job.spec, Path(job.results_root), run_id=job.key)
            _note(run, info)
            execute(run, console)
        else:
            _note(run, info)
            run_stage(run, "evaluate", lambda: evaluate(run), console)
            run_stage(run, "record", lambda: record(run), console)
    except Terminated as e:
        if run.record_file.is_file():
            info.terminated = signal.Signals(e.signum).name
            _note(run, info)
        console.print(f"{job.key}: {e}")
        return 128 + e.signum
    return 0


def _note(run: RunDir, info: JobInfo) -> None:
    rec = run.load()
    rec.job = info
    run.save(rec)


def write_spec(run_dir: Path, job: JobSpec) -> Path:
    job_dir(run_dir).mkdir(parents=True, exist_ok=True)
    path = job_dir(run_dir) / "spec.json"
    write_json_atomic(path, json.loads(job.model_dump_json()))
    return path
