"""Experiments: the TOML file's validation, the local backend (two runs at once on two fake GPU
slots, a duplicate submission that does not run twice), the HTCondor backend (descriptions rendered
by htcondor2, submitted and polled through stand-in condor_submit/condor_q on PATH), and the retry
rules of `ptb resume`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import htcondor2
import pytest

from conftest import ptb, record, script_agent
from posttrainbench.backends.base import Job
from posttrainbench.backends.htcondor import HTCondor
from posttrainbench.backends.slurm import Slurm
from posttrainbench.errors import UserError
from posttrainbench.experiments import spec as experiment
from posttrainbench.experiments.job import JobSpec
from posttrainbench.experiments.state import RunState, RunStatus, action
from posttrainbench.specs import FailureClass

FAKE_CONDOR = Path(__file__).parent / "fake_condor"
# The agent notes when it ran and on which GPU, submits the base model unchanged, and takes a while.
AGENT = """\
echo "$(basename "$PWD" 2>/dev/null) start $(date +%s.%N) ${{CUDA_VISIBLE_DEVICES}}" >> {marks}
python -c "import os, shutil; from huggingface_hub import snapshot_download as s; \\
shutil.copytree(s(os.environ['PTB_MODEL'], local_files_only=True), 'final_model')"
sleep {sleep}
echo "end $(date +%s.%N)" >> {marks}
"""


def write_experiment(path: Path, body: str) -> Path:
    path.write_text(textwrap.dedent(body))
    return path


def load_error(tmp_path: Path, body: str) -> str:
    with pytest.raises(UserError) as e:
        experiment.load(write_experiment(tmp_path / "exp.toml", body))
    return str(e.value)


MINIMAL = """
    [matrix]
    tasks = ["arith"]
    models = ["ptb-tiny"]
    [[agents]]
    name = "noop"
"""


def test_experiment_file_errors_name_the_key(tmp_path):
    exp, runs = experiment.load(write_experiment(tmp_path / "sweep.toml", MINIMAL))
    assert exp.name == "sweep" and exp.backend.kind == "local"
    assert [r.key for r in runs] == ["arith__ptb-tiny__noop__s0"] and runs[0].spec.budget_seconds == 36000
    assert "backend.partion: unknown key" in load_error(
        tmp_path, MINIMAL + '[backend]\nkind = "slurm"\npartion = "gpu"\n'
    )
    assert "backend: Input tag 'pbs' found using 'kind' does not match" in load_error(
        tmp_path, MINIMAL + '[backend]\nkind = "pbs"\n'
    )
    bad_task = MINIMAL.replace('["arith"]', '["arith", "gsm9k"]')
    assert "matrix.tasks[1]: unknown task 'gsm9k'" in load_error(tmp_path, bad_task)
    assert "run.hourz: unknown key" in load_error(tmp_path, MINIMAL + "[run]\nhourz = 3\n")
    assert "run.gpus: Input should be greater than or equal to 0" in load_error(
        tmp_path, MINIMAL + "[run]\ngpus = -1\n"
    )
    assert "run.task: set by the matrix" in load_error(tmp_path, MINIMAL + '[run]\ntask = "gsm8k"\n')
    twice = MINIMAL + '[[agents]]\nname = "noop"\nconfig = "x"\n'
    assert "both called 'noop'; give each a distinct `label`" in load_error(tmp_path, twice)
    assert "retry.on[0]: Input should be" in load_error(tmp_path, MINIMAL + '[retry]\non = ["flaky"]\n')
    assert "not valid TOML" in load_error(tmp_path, "[matrix\n")
    proc = ptb("submit", str(tmp_path / "missing.toml"))
    assert proc.returncode == 2 and "no such experiment file" in proc.stderr


def test_matrix_expansion_and_cluster_scripts(tmp_path):
    body = """
        name = "grid"
        [matrix]
        tasks = ["arith", "gsm8k"]
        models = ["ptb-tiny"]
        seeds = [0, 1]
        [[agents]]
        name = "script"
        config = "/opt/a.sh"
        label = "mine"
        [[agents]]
        name = "noop"
        [run]
        hours = 2
        gpus = 2
        integrity_judges = ["openai/gpt-5.4"]
        judge_timeout_seconds = 600
        [backend]
        kind = "slurm"
        partition = "h100"
        account = "lab"
        qos = "high"
        cpus_per_task = 16
        mem = "128G"
        directives = ["--constraint=hopper"]
        setup = ["module load cuda"]
        python = "/shared/venv/bin/python"
        eval_hours = 1
        [paths]
        results = "out"
        model_cache = "/models"
    """
    path = write_experiment(tmp_path / "grid.toml", body)
    exp, runs = experiment.load(path)
    assert len(runs) == 8 and len({r.key for r in runs}) == 8
    assert "gsm8k__ptb-tiny__mine__s1" in {r.key for r in runs}
    run = next(r for r in runs if r.key == "arith__ptb-tiny__mine__s0")
    assert run.spec.agent_config == "/opt/a.sh" and run.spec.gpus == 2
    # 2 h budget + 30 s grace + one judge's 600 s + 1 h evaluation + 10 min set-up
    assert experiment.time_limit_minutes(run.spec, 1.0) == 120 + 1 + 10 + 60 + 10
    assert experiment.results_dir(path, exp) == tmp_path / "out"
    assert experiment.environment(path, exp) == {"PTB_MODEL_CACHE": "/models"}
    spec_file = tmp_path / "out" / run.key / "job" / "spec.json"
    job = Job(JobSpec(experiment="grid", key=run.key, backend="slurm", spec=run.spec,
                      results_root=str(tmp_path / "out")), spec_file)  # fmt: skip
    script = Slurm(exp.backend).script(job)
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    for d in ("--gres=gpu:2", "--time=201", "--partition=h100", "--account=lab", "--qos=high",
              "--cpus-per-task=16", "--mem=128G", "--constraint=hopper",
              f"--output={spec_file.parent}/slurm-%j.out", f"--chdir={spec_file.parent.parent}"):  # fmt: skip
        assert f"#SBATCH {d}" in lines, (d, script)
    assert lines.index("module load cuda") < len(lines) - 1
    assert lines[-1] == f"exec /shared/venv/bin/python -m posttrainbench job {spec_file}"


def test_htcondor_description_field_by_field(tmp_path):
    body = (
        MINIMAL
        + """
        [run]
        hours = 1
        gpus = 1
        [backend]
        kind = "htcondor"
        request_cpus = 4
        request_memory = "32GB"
        request_disk = "50GB"
        requirements = '(CUDACapability >= 8.0) && (GPUs_GlobalMemoryMb >= 40000)'
        container_image = "docker://ghcr.io/lab/ptb:1.0"
        commands = {"+MaxRunningPrice" = "100", "accounting_group" = "group_ml"}
    """
    )
    exp, runs = experiment.load(write_experiment(tmp_path / "c.toml", body))
    spec_file = tmp_path / "r" / runs[0].key / "job" / "spec.json"
    job = Job(JobSpec(experiment="c", key=runs[0].key, backend="htcondor", spec=runs[0].spec,
                      results_root=str(tmp_path / "r")), spec_file)  # fmt: skip
    sub = HTCondor(exp.backend).description(job)
    assert isinstance(sub, htcondor2.Submit)
    expected = {
        "universe": "container",
        "container_image": "docker://ghcr.io/lab/ptb:1.0",
        "executable": str(spec_file.parent / "condor.sh"),
        "initialdir": str(spec_file.parent.parent),
        "output": str(spec_file.parent / "condor.out"),
        "log": str(spec_file.parent / "condor.log"),
        "request_gpus": "1",
        "request_cpus": "4",
        "request_memory": "32GB",
        "request_disk": "50GB",
        "requirements": "(CUDACapability >= 8.0) && (GPUs_GlobalMemoryMb >= 40000)",
        "getenv": "true",
        "environment": '"PTB_JOB_ID=$(ClusterId).$(ProcId)"',
        "allowed_job_duration": str((60 + 1 + 120 + 10) * 60),
        "accounting_group": "group_ml",
    }
    for key, value in expected.items():
        assert sub[key] == value, key
    assert sub["MY.MaxRunningPrice"] == "100" and sub["MY.PtbRun"] == f'"{runs[0].key}"'
    assert dict(htcondor2.Submit(str(sub))) == dict(sub)  # the rendered text reads back the same


def _exp(path: Path, results: Path, name: str, label: str, agent: Path, backend: str, **run) -> Path:
    settings = {"minutes": 3, "sandbox": "none", "eval_limit": 5, "monitor_seconds": 1, **run}
    run_toml = "\n".join(f"{k} = {json.dumps(v)}" for k, v in settings.items())
    return write_experiment(
        path,
        f"""
        name = "{name}"
        [matrix]
        tasks = ["arith"]
        models = ["ptb-tiny"]
        seeds = [0, 1]
        [[agents]]
        name = "script"
        config = "{agent}"
        label = "{label}"
        [run]
        {run_toml}
        [backend]
        {backend}
        [paths]
        results = "{results}"
    """,
    )


def marks(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.slow
def test_local_backend_two_gpu_slots_and_duplicate_submission(tmp_path, results):
    marks_file = tmp_path / "marks.txt"
    agent = script_agent(tmp_path, "copy", AGENT.format(marks=marks_file, sleep=4))
    path = _exp(tmp_path / "local.toml", results, "local2", "local2", agent,
                'kind = "local"\ngpus = [0, 1]', gpus=1)  # fmt: skip
    cmd = [sys.executable, "-m", "posttrainbench", "submit", str(path)]
    env = {**os.environ, "COLUMNS": "200"}
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    time.sleep(1.0)
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    out = first.communicate(timeout=600)[0]
    assert first.returncode == 0 and second.returncode == 0, (out, second.stdout, second.stderr)
    starts = [m for m in marks(marks_file) if m[1] == "start"]
    assert len(starts) == 2, (starts, out, second.stdout)  # each run once, despite two submissions
    assert sorted(m[3] for m in starts) == ["0", "1"]  # one GPU slot each
    ends = [float(m[1]) for m in marks(marks_file) if m[0] == "end"]
    assert max(float(m[2]) for m in starts) < min(ends)  # both agents were working at the same time
    keys = ["arith__ptb-tiny__local2__s0", "arith__ptb-tiny__local2__s1"]
    for key in keys:
        rec = record(results / key)
        assert rec["outcome"]["status"] == "complete", rec["outcome"]
        assert rec["job"]["attempt"] == 1 and rec["job"]["job_id"].startswith("local:")
        header = (results / key / "monitor.csv").read_text().splitlines()[0]
        assert header.endswith(",gpu0_util_pct,gpu0_mem_used_mb,gpu0_mem_total_mb,gpu0_power_w") or (
            "gpu1_util_pct" in header
        )
    # A third submission finds both finished and submits nothing.
    third = ptb("submit", str(path), check=True)
    assert "to submit: 0; finished 2" in third.stdout
    status = json.loads(ptb("status", str(path), "--json", check=True).stdout)
    assert [s["state"] for s in status] == ["finished", "finished"]
    # Had the evaluation failed (set here in the record), resume repeats only the evaluation, in place.
    rec = record(results / keys[1])
    rec["outcome"]["failure_class"] = "evaluation_failed"
    (results / keys[1] / "run.json").write_text(json.dumps(rec))
    final_model = (results / keys[1] / "final_model" / "config.json").stat().st_mtime_ns
    out = ptb("resume", str(path), check=True).stdout
    assert f"{keys[1]}: evaluation_failed -> evaluating again (2/3)" in out and keys[0] not in out, out
    rec = record(results / keys[1])
    assert rec["outcome"]["failure_class"] is None and rec["outcome"]["status"] == "complete"
    assert rec["job"]["attempt"] == 2 and rec["job"]["mode"] == "evaluate"
    assert [p["failure_class"] for p in rec["job"]["history"]] == ["evaluation_failed"]
    assert (results / keys[1] / "job" / "claim.1.json").is_file()
    assert (results / keys[1] / "final_model" / "config.json").stat().st_mtime_ns == final_model
    assert len([m for m in marks(marks_file) if m[1] == "start"]) == 2  # the agent did not run again


@pytest.mark.slow
def test_htcondor_submit_and_poll(tmp_path, results, monkeypatch):
    marks_file = tmp_path / "marks.txt"
    agent = script_agent(tmp_path, "copy", AGENT.format(marks=marks_file, sleep=1))
    path = _exp(tmp_path / "condor.toml", results, "condor", "condor", agent,
                f'kind = "htcondor"\npython = "{sys.executable}"', gpus=0)  # fmt: skip
    monkeypatch.setenv("PATH", f"{FAKE_CONDOR}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_CONDOR_STATE", str(tmp_path / "condor"))
    monkeypatch.setenv("FAKE_CONDOR_IDLE", "3")
    out = ptb("submit", str(path), check=True).stdout
    assert "HTCondor job 100.0" in out and "HTCondor job 101.0" in out, out
    states = [s["state"] for s in json.loads(ptb("status", str(path), "--json", check=True).stdout)]
    assert states == ["queued", "queued"]
    deadline, seen = time.time() + 400, set()
    while time.time() < deadline:
        status = json.loads(ptb("status", str(path), "--json", check=True).stdout)
        seen |= {s["state"] for s in status}
        if all(s["state"] in ("finished", "failed") for s in status):
            break
        time.sleep(2)
    assert [s["state"] for s in status] == ["finished", "finished"], status
    assert "running" in seen
    key = "arith__ptb-tiny__condor__s0"
    assert record(results / key)["job"]["job_id"] == "100.0"  # the id came through the environment
    assert (results / key / "job" / "condor.sub").read_text().rstrip().endswith("queue")
    assert "to submit: 0; finished 2" in ptb("submit", str(path), check=True).stdout


def test_retry_rules():
    retry = experiment.Retry()
    st = lambda fc, attempt=1: RunStatus(key="k", state=RunState.failed, attempt=attempt, failure_class=fc)  # noqa: E731
    assert action(st(FailureClass.provider_error), retry) == "retry"
    assert action(st(FailureClass.job_lost), retry) == "retry"
    assert action(st(FailureClass.evaluation_failed), retry) == "evaluate"
    assert action(st(FailureClass.agent_hung), retry) == "no"  # used its budget
    assert action(st(FailureClass.no_final_model), retry) == "no"  # ended normally
    assert action(st(FailureClass.auth_failed), retry) == "no"  # a person must fix the key first
    assert action(st(FailureClass.provider_error, attempt=3), retry) == "exhausted"
    assert action(st(FailureClass.auth_failed), experiment.Retry(on=[FailureClass.auth_failed])) == "retry"
