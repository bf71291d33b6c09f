"""The throwaway Slurm cluster of slurm_cluster.py: two fake-GPU jobs run side by side on different
devices, scancel removes a running job, and a second cluster in the same session starts cleanly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from slurm_cluster import available, slurm_cluster

pytestmark = pytest.mark.skipif(available() is not None, reason=f"no Slurm cluster here: {available()}")

JOB = 'echo "$CUDA_VISIBLE_DEVICES $(date +%s.%N)" > {out}; sleep 3; echo "$(date +%s.%N)" >> {out}'


def _pids(cluster_dir: Path) -> list[int]:
    return [int((cluster_dir / f"{name}.pid").read_text()) for name in ("slurmctld", "slurmd")]


def test_two_gpu_jobs_run_concurrently_on_different_devices(tmp_path: Path) -> None:
    with slurm_cluster(tmp_path, gpus=2) as cluster:
        outs = [tmp_path / f"job{i}.txt" for i in range(2)]
        jobs = [
            cluster.sbatch(
                "--gres=gpu:1", "-c", "1", "-o", str(tmp_path / "slurm-%j.out"), "--wrap", JOB.format(out=out)
            )
            for out in outs
        ]
        cluster.wait_gone(*jobs, timeout=20)
        runs = []
        for out in outs:
            assert out.exists(), f"{out.name} was not written\n{cluster.log_tail()}"
            (device, start), (end,) = (line.split() for line in out.read_text().splitlines())
            runs.append((device, float(start), float(end)))
        pids = _pids(cluster.dir)
    (dev_a, start_a, end_a), (dev_b, start_b, end_b) = runs
    assert {dev_a, dev_b} == {"0", "1"}, runs
    assert start_a < end_b and start_b < end_a, f"jobs did not overlap: {runs}"
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids), "daemons still running after exit"


def test_scancel_removes_running_job_and_exit_cancels_the_rest(tmp_path: Path) -> None:
    with slurm_cluster(tmp_path, gpus=1) as cluster:
        log = str(tmp_path / "slurm-%j.out")
        cancelled = cluster.sbatch("-c", "1", "-o", log, "--wrap", "sleep 300")
        left = cluster.sbatch("-c", "1", "-o", log, "--wrap", "sleep 300")  # for the exit to cancel
        assert cluster.squeue()[cancelled] in {"PENDING", "RUNNING"}
        with pytest.raises(TimeoutError):  # it runs until cancelled
            cluster.wait_gone(cancelled, timeout=2)
        assert cluster.squeue()[cancelled] == "RUNNING", cluster.log_tail()
        cluster.run("scancel", cancelled)
        cluster.wait_gone(cancelled, timeout=15)
        assert left in cluster.squeue()
        pids = _pids(cluster.dir)
        env = cluster.env
    assert env["SLURM_CONF"].endswith("slurm.conf") and os.environ.get("SLURM_CONF") != env["SLURM_CONF"]
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids), "daemons still running after exit"
