"""HTCondor: a submit description per run, rendered with the `htcondor2` bindings (GPUs, CPUs,
memory, disk, requirements, a container image, a time limit), submitted with `condor_submit` and
followed with `condor_q`. Assumes the run directories are on a file system the execute nodes share."""

from __future__ import annotations

import htcondor2
from rich.console import Console

from posttrainbench.backends.base import Backend, Job, job_script, record_submission, scheduler_command
from posttrainbench.experiments.spec import HTCondorBackend, time_limit_minutes

# JobStatus codes: 1 idle, 2 running, 3 removed, 4 completed, 5 held, 6 transferring output, 7 suspended
STATES = {"1": "queued", "2": "running", "5": "held", "6": "running", "7": "held"}


class HTCondor(Backend):
    name = "htcondor"

    def __init__(self, options: HTCondorBackend):
        self.options = options

    def description(self, job: Job) -> htcondor2.Submit:
        o, spec = self.options, job.spec.spec
        d = {
            "universe": "container" if o.container_image else "vanilla",
            "executable": str(job.dir / "condor.sh"),
            "transfer_executable": "false",
            "should_transfer_files": "NO",
            "initialdir": str(job.run_dir),
            "output": str(job.dir / "condor.out"),
            "error": str(job.dir / "condor.err"),
            "log": str(job.dir / "condor.log"),
            "request_cpus": str(o.request_cpus),
            "request_memory": o.request_memory,
            "request_disk": o.request_disk,
            "getenv": o.getenv,
            "environment": '"PTB_JOB_ID=$(ClusterId).$(ProcId)"',
            "allowed_job_duration": str(time_limit_minutes(spec, o.eval_hours) * 60),
            "batch_name": f"ptb-{job.spec.experiment}",
            "+PtbRun": f'"{job.spec.key}"',
        }
        if spec.gpus:
            d["request_gpus"] = str(spec.gpus)
        if o.requirements:
            d["requirements"] = o.requirements
        if o.container_image:
            d["container_image"] = o.container_image
        return htcondor2.Submit({**d, **o.commands})

    def submit(self, jobs: list[Job], console: Console) -> None:
        for job in jobs:
            script = job.dir / "condor.sh"
            script.write_text(job_script(job, self.options.python, self.options.setup))
            script.chmod(0o755)
            sub = job.dir / "condor.sub"
            sub.write_text(str(self.description(job)))
            out = scheduler_command(["condor_submit", "-terse", str(sub)], "htcondor")
            job_id = out.split()[0] if out.split() else ""
            if not job_id.replace(".", "").isdigit():
                raise ValueError(f"condor_submit printed {out!r}, not a job id")
            record_submission(job, self.name, job_id)
            console.print(f"  {job.spec.key}: HTCondor job {job_id}", highlight=False)

    def queue(self, job_ids: list[str]) -> dict[str, str]:
        out = scheduler_command(["condor_q", "-af:j", "JobStatus"], "htcondor")
        listed = dict(parts for line in out.splitlines() if len(parts := line.split()) == 2)
        return {i: STATES[listed[i]] for i in job_ids if listed.get(i) in STATES}
