"""Slurm: one `sbatch` per run, asking for the run's GPUs (`--gres=gpu:N`) and a time limit that
covers the agent's budget, the evaluation and a grace period; the job's output goes into the run
directory. The queue is read with `squeue`."""

from __future__ import annotations

import re

from rich.console import Console

from posttrainbench.backends.base import Backend, Job, job_script, record_submission, scheduler_command
from posttrainbench.experiments.spec import SlurmBackend, time_limit_minutes

STATES = {"PENDING": "queued", "REQUEUED": "queued", "REQUEUE_HOLD": "held", "SUSPENDED": "held"}


class Slurm(Backend):
    name = "slurm"

    def __init__(self, options: SlurmBackend):
        self.options = options

    def directives(self, job: Job) -> list[str]:
        o, spec = self.options, job.spec.spec
        opts = [
            f"--job-name=ptb-{job.spec.experiment}-{job.spec.key}",
            f"--output={job.dir}/slurm-%j.out",
            f"--time={time_limit_minutes(spec, o.eval_hours)}",
            f"--chdir={job.run_dir}",
        ]
        opts += [f"--gres=gpu:{spec.gpus}"] * bool(spec.gpus)
        for flag, value in (("partition", o.partition), ("account", o.account), ("qos", o.qos),
                            ("cpus-per-task", o.cpus_per_task), ("mem", o.mem)):  # fmt: skip
            if value is not None:
                opts.append(f"--{flag}={value}")
        return [f"#SBATCH {d}" for d in [*opts, *self.options.directives]]

    def script(self, job: Job) -> str:
        return job_script(job, self.options.python, self.options.setup, self.directives(job))

    def submit(self, jobs: list[Job], console: Console) -> None:
        for job in jobs:
            path = job.dir / "sbatch.sh"
            path.write_text(self.script(job))
            out = scheduler_command(["sbatch", "--parsable", str(path)], "slurm")
            job_id = out.strip().split(";")[0]
            if not re.fullmatch(r"\d+(_\d+)?", job_id):
                raise ValueError(f"sbatch printed {out!r}, not a job id")
            record_submission(job, self.name, job_id)
            console.print(f"  {job.spec.key}: Slurm job {job_id}", highlight=False)

    def queue(self, job_ids: list[str]) -> dict[str, str]:
        out = scheduler_command(["squeue", "--me", "--noheader", "--format=%i|%T"], "slurm")
        listed = dict(line.strip().partition("|")[::2] for line in out.splitlines() if line.strip())
        return {i: STATES.get(listed[i], "running") for i in job_ids if i in listed}
