"""This machine: runs share out its GPU slots (each job gets its own CUDA_VISIBLE_DEVICES), as many at
once as the slots and `max_parallel` allow, with a live table of what runs where. `ptb submit` waits
for them; Ctrl-C stops them (their records say so, and `ptb resume` retries them)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

import psutil
from rich.console import Console
from rich.live import Live
from rich.table import Table

from posttrainbench.backends.base import Backend, Job, record_submission
from posttrainbench.errors import UserError
from posttrainbench.experiments.spec import LocalBackend
from posttrainbench.rundir import RunDir
from posttrainbench.sandbox import gpus
from posttrainbench.specs import clock


def local_job_id(pid: int) -> str:
    """host, pid and start time: a pid reused later is not mistaken for the job."""
    return f"local:{socket.gethostname()}:{pid}:{int(psutil.Process(pid).create_time())}"


def alive(job_id: str) -> bool | None:
    """Whether a local job still runs (None: it runs on another host, which cannot be asked)."""
    _, host, pid, started = job_id.split(":")
    if host != socket.gethostname():
        return None
    try:
        proc = psutil.Process(int(pid))
        return int(proc.create_time()) == int(started) and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@dataclass
class Running:
    job: Job
    proc: subprocess.Popen
    gpus: list[int]
    started: float = field(default_factory=time.monotonic)


class Local(Backend):
    name = "local"

    def __init__(self, options: LocalBackend):
        self.slots = list(options.gpus) if options.gpus is not None else gpus.available()
        self.max_parallel = options.max_parallel or max(1, len(self.slots))

    def queue(self, job_ids: list[str]) -> dict[str, str]:
        """Local jobs are not queued anywhere: those whose process still runs are (a job on another host
        cannot be asked, and counts as running)."""
        return {i: "running" for i in job_ids if i.startswith("local:") and alive(i) is not False}

    def submit(self, jobs: list[Job], console: Console) -> None:
        for job in jobs:
            if job.spec.spec.gpus > len(self.slots):
                raise UserError(
                    f"{job.spec.key} asks for {job.spec.spec.gpus} GPU(s) but the local backend has "
                    f"{len(self.slots)} slot(s) ({self.slots}); set backend.gpus or run.gpus"
                )
        pending, running, done = list(jobs), [], []
        free = list(self.slots)
        try:
            with Live(self._table(pending, running, done), console=console, refresh_per_second=2) as live:
                while pending or running:
                    for job in list(pending):
                        need = job.spec.spec.gpus
                        if len(running) < self.max_parallel and need <= len(free):
                            ids, free = free[:need], free[need:]
                            running.append(self._start(job, ids))
                            pending.remove(job)
                    for r in [r for r in running if r.proc.poll() is not None]:
                        running.remove(r)
                        free = sorted(free + r.gpus)
                        done.append(r)
                    live.update(self._table(pending, running, done))
                    time.sleep(0.5)
        except KeyboardInterrupt:
            console.print("[yellow]stopping: SIGTERM to the running jobs[/]")
            for r in running:
                r.proc.send_signal(signal.SIGTERM)
            for r in running:
                r.proc.wait()
            raise UserError(
                "interrupted; `ptb status` shows what finished, `ptb resume` retries the rest"
            ) from None

    def _start(self, job: Job, ids: list[int]) -> Running:
        env = {
            **os.environ,
            "CUDA_VISIBLE_DEVICES": ",".join(map(str, ids)),
            "PTB_JOB_ID": "local",
            "COLUMNS": "160",
        }
        with (job.dir / "output.log").open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "posttrainbench", "job", str(job.spec_file)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True,  # Ctrl-C reaches only `ptb submit`, which stops the jobs in order
            )  # fmt: skip
        record_submission(job, self.name, local_job_id(proc.pid))
        return Running(job, proc, ids)

    def _table(self, pending: list[Job], running: list[Running], done: list[Running]) -> Table:
        table = Table(title=f"{len(done)} done, {len(running)} running, {len(pending)} waiting", box=None)
        for col in ("run", "state", "GPUs", "time", "result"):
            table.add_column(col)
        for r in done:
            table.add_row(r.job.spec.key, "done", _gpus(r.gpus), clock(time.monotonic() - r.started),
                          _result(r))  # fmt: skip
        for r in running:
            left = r.job.spec.spec.budget_seconds - (time.monotonic() - r.started)
            state = f"solving, {clock(left)} left" if left > 0 else "evaluating"
            table.add_row(r.job.spec.key, state, _gpus(r.gpus), clock(time.monotonic() - r.started), "")
        for job in pending:
            table.add_row(job.spec.key, "waiting", "-", "", "")
        return table


def _gpus(ids: list[int]) -> str:
    return ",".join(map(str, ids)) or "-"


def _result(r: Running) -> str:
    try:
        o = RunDir(r.job.run_dir).load().outcome
    except (OSError, ValueError):
        o = None
    if o is None:
        return f"[red]no record (exit {r.proc.returncode})[/]"
    score = "-" if o.counted_score is None else f"{o.counted_score:.3f}"
    failure = f" [red]{o.failure_class.value}[/]" if o.failure_class else ""
    return f"score {score}{failure}" + (" [red]flagged[/]" if o.flagged else "")
