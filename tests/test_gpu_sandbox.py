"""Only the allotted GPUs are visible inside the bubblewrap sandbox: each GPU of a machine with two
or more, allotted alone, is the one and only GPU CUDA and nvidia-smi see inside, and it computes.

Needs NVIDIA GPUs (skipped elsewhere); run on the GPU machine with
`python -m pytest tests/test_gpu_sandbox.py --noconftest`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from posttrainbench import sandbox
from posttrainbench.sandbox import gpus
from posttrainbench.sandbox.plan import Mount, MountPlan

pytestmark = [
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed"),
    pytest.mark.skipif(
        shutil.which("nvidia-smi") is None or len(gpus.installed()) < 2,
        reason="needs a machine with two or more NVIDIA GPUs",
    ),
]

PROBE = r"""
import json, os, subprocess, torch
x = torch.arange(1 << 20, device="cuda", dtype=torch.float64)
print(json.dumps({
    "cuda_count": torch.cuda.device_count(),
    "uuid": "GPU-" + str(torch.cuda.get_device_properties(0).uuid),
    "sum_ok": float(x.sum()) == float((1 << 20) * ((1 << 20) - 1) // 2),
    "smi": subprocess.run(["nvidia-smi", "--query-gpu=uuid", "--format=csv,noheader"],
                          capture_output=True, text=True).stdout.split(),
    "dev": sorted(d for d in os.listdir("/dev") if d.startswith("nvidia")),
    "cvd": os.environ.get("CUDA_VISIBLE_DEVICES"),
}))
"""


def host_gpus() -> dict[int, str]:
    """nvidia-smi index (device minor) -> UUID, outside any sandbox."""
    out = subprocess.run(
        ["nvidia-smi", "--query-gpu=index,uuid", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {int(i): u.strip() for i, u in (line.split(",") for line in out.strip().splitlines())}


def test_each_allotted_gpu_is_the_only_one_visible(tmp_path):
    host = host_gpus()
    (tmp_path / "tmp").mkdir()
    box = sandbox.resolve("bwrap", None)
    prefix = str(Path(sys.prefix))
    for minor, uuid in host.items():
        plan = MountPlan(
            mounts=[
                Mount(kind="ro", source=p, target=p) for p in {prefix, str(Path(sys.base_prefix))}
            ] + [Mount(kind="rw", source=str(tmp_path), target=str(tmp_path))],
            workdir=str(tmp_path),
            env={"PATH": f"{prefix}/bin:/usr/local/nvidia/bin:/usr/bin:/bin", "HOME": str(tmp_path),
                 **{k: v for k, v in os.environ.items() if k.startswith("LD_LIBRARY")}},
            network=False,
            tmp=str(tmp_path / "tmp"),
            gpus=[minor],
        )  # fmt: skip
        proc = subprocess.run(
            box.command(plan, [sys.executable, "-c", PROBE]),
            env=box.env(plan),
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        assert out["cuda_count"] == 1 and out["uuid"] == uuid, (minor, out, host)
        assert out["smi"] == [uuid], (minor, out)
        assert out["sum_ok"] and out["cvd"] == "0"
        others = {f"nvidia{m}" for m in host if m != minor}
        assert f"nvidia{minor}" in out["dev"] and not others & set(out["dev"]), out["dev"]
