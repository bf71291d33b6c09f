"""What every backend does: submit jobs (each runs `ptb job RUN_DIR/job/spec.json`) and say which of
its jobs are still queued or running."""

from __future__ import annotations

import shlex
import subprocess
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from posttrainbench.errors import UserError
from posttrainbench.experiments.job import JobSpec, Submission, job_dir
from posttrainbench.rundir import write_json_atomic
from posttrainbench.specs import utcnow


@dataclass
class Job:
    spec: JobSpec
    spec_file: Path

    @property
    def run_dir(self) -> Path:
        return self.spec_file.parent.parent

    @property
    def dir(self) -> Path:
        return job_dir(self.run_dir)


class Backend(ABC):
    name: str

    @abstractmethod
    def submit(self, jobs: list[Job], console: Console) -> None:
        """Start or queue the jobs; each gets RUN_DIR/job/submission.json with its job id."""

    @abstractmethod
    def queue(self, job_ids: list[str]) -> dict[str, str]:
        """Those of these jobs the scheduler still has: job id -> queued | running | held."""


def record_submission(job: Job, backend: str, job_id: str) -> None:
    sub = Submission(backend=backend, job_id=job_id, attempt=job.spec.attempt, submitted_at=utcnow())
    write_json_atomic(job.dir / "submission.json", sub.model_dump(mode="json"))


def job_script(job: Job, python: str | None, setup: list[str], header: list[str] = ()) -> str:
    """The shell script a cluster job runs: scheduler directives, the set-up lines, then `ptb job`."""
    command = [python or sys.executable, "-m", "posttrainbench", "job", str(job.spec_file)]
    return "\n".join(["#!/bin/bash", *header, "set -e", *setup, f"exec {shlex.join(command)}", ""])


def scheduler_command(argv: list[str], what: str) -> str:
    """Run a scheduler client command; its failure becomes an error naming the command and its output."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise UserError(
            f"{argv[0]} not found: the {what} backend needs the scheduler's client commands on PATH"
        ) from None
    except subprocess.TimeoutExpired:
        raise UserError(f"{shlex.join(argv)} did not answer within 120 s") from None
    if proc.returncode != 0:
        out = (proc.stderr or proc.stdout).strip()
        raise UserError(f"{shlex.join(argv)} failed (exit {proc.returncode}): {out}")
    return proc.stdout
