"""The Slurm backend against a real single-node cluster (slurmctld, slurmd, munge; two fake GPUs):
a 2-run experiment is submitted, followed with `ptb status` through completion; one job is cancelled
mid-run (SIGTERM, as at a time limit or preemption), shows as failed with `job_lost`, and
`ptb resume` runs it again as attempt 2 with the first attempt kept in .attempts/."""

from __future__ import annotations

import json
import sys
import time

import pytest

from conftest import ptb, record, script_agent
from slurm_cluster import available, slurm_cluster
from test_experiments import AGENT, _exp, marks

pytestmark = [
    pytest.mark.skipif(available() is not None, reason=f"no Slurm cluster here: {available()}"),
    pytest.mark.slow,
]


def statuses(path) -> list[dict]:
    return json.loads(ptb("status", str(path), "--json", check=True).stdout)


def wait_for(path, done, timeout: float, what: str, cluster) -> list[dict]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = statuses(path)
        if done(status):
            return status
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}: {status}\n{cluster.log_tail()}")


def test_submit_status_kill_and_resume(tmp_path, results, monkeypatch):
    marks_file = tmp_path / "marks.txt"
    agent = script_agent(tmp_path, "copy", AGENT.format(marks=marks_file, sleep=12))
    backend = f'kind = "slurm"\npython = "{sys.executable}"\ncpus_per_task = 1\nmem = "3G"'
    path = _exp(tmp_path / "slurm.toml", results, "slurm", "slurm", agent, backend, gpus=1)
    keys = ["arith__ptb-tiny__slurm__s0", "arith__ptb-tiny__slurm__s1"]
    with slurm_cluster(tmp_path, gpus=2) as cluster:
        monkeypatch.setenv("SLURM_CONF", str(cluster.conf))
        out = ptb("submit", str(path), check=True).stdout
        assert out.count("Slurm job") == 2, out
        script = (results / keys[0] / "job" / "sbatch.sh").read_text()
        assert "#SBATCH --gres=gpu:1" in script and "#SBATCH --mem=3G" in script
        assert statuses(path)[0]["state"] in ("queued", "running")

        def both_solving(status):
            return len(marks(marks_file)) >= 2 and all("solving" in s["detail"] for s in status)

        status = wait_for(path, both_solving, 120, "both agents to start", cluster)
        assert sorted(m[3] for m in marks(marks_file) if m[1] == "start") == ["0", "1"]  # a fake GPU each
        victim = status[0]["job_id"]
        cluster.run("scancel", victim)
        status = wait_for(
            path,
            lambda s: all(x["state"] in ("finished", "failed") for x in s),
            300,
            "both runs to end",
            cluster,
        )
        lost, done = status
        assert done["state"] == "finished" and done["attempt"] == 1, done
        assert lost["state"] == "failed" and lost["failure_class"] == "job_lost", lost
        assert "stopped by SIGTERM" in lost["detail"] and lost["resume"] == "retry"
        assert record(results / keys[0])["job"]["terminated"] == "SIGTERM"
        assert (results / keys[0] / "job" / f"slurm-{victim}.out").is_file()
        # Another submit leaves both alone; resume retries the lost one only.
        assert "to submit: 0; finished 1" in ptb("submit", str(path), check=True).stdout
        out = ptb("resume", str(path), check=True).stdout
        assert f"{keys[0]}: job_lost -> new attempt (2/3)" in out and keys[1] not in out, out
        status = wait_for(path, lambda s: s[0]["state"] in ("finished", "failed"), 300, "the retry", cluster)
    assert status[0]["state"] == "finished" and status[0]["attempt"] == 2, status
    rec = record(results / keys[0])
    assert rec["job"]["attempt"] == 2 and rec["job"]["job_id"] != victim
    (past,) = rec["job"]["history"]
    assert past["failure_class"] == "job_lost" and past["job_id"] == victim
    old = results / past["moved_to"]
    assert old == results / ".attempts" / keys[0] / "attempt-1" and (old / "run.json").is_file()
    assert record(old)["job"]["terminated"] == "SIGTERM"
