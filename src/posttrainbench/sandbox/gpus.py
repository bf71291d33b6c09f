"""NVIDIA GPUs as the sandboxes see them: device files, the driver's /proc entries, and which
GPUs a run is allotted. GPUs are named by their device minor number (the nvidia-smi index)."""

from __future__ import annotations

import os
import re
from pathlib import Path

PROC_GPUS = Path("/proc/driver/nvidia/gpus")
# Shared by all GPUs: present whenever one GPU is used.
CONTROL_DEVICES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset")


def proc_entries(root: Path = PROC_GPUS) -> dict[int, Path]:
    """device minor -> the driver's directory for that GPU (/proc/driver/nvidia/gpus/<bus id>)."""
    entries = {}
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            found = re.search(r"Device Minor:\s*(\d+)", (d / "information").read_text())
        except OSError:
            continue
        if found:
            entries[int(found.group(1))] = d
    return entries


def installed() -> list[int]:
    """The GPUs this machine has (device files /dev/nvidiaN)."""
    return sorted(
        int(m.group(1)) for p in Path("/dev").glob("nvidia*") if (m := re.fullmatch(r"nvidia(\d+)", p.name))
    )


def allot(count: int, environ: dict[str, str] | None = None) -> list[int]:
    """The first `count` GPUs the harness itself was given: the indices in its CUDA_VISIBLE_DEVICES
    (set by Slurm, HTCondor or the user), else the machine's GPUs in order."""
    if count == 0:
        return []
    visible = (environ if environ is not None else os.environ).get("CUDA_VISIBLE_DEVICES")
    if visible is not None and re.fullmatch(r"\d+(,\d+)*", visible.strip()):
        pool = [int(i) for i in visible.split(",")]
    else:
        pool = installed()
    if len(pool) < count:
        raise ValueError(
            f"{count} GPU(s) asked for, but only {len(pool)} available here "
            f"({'CUDA_VISIBLE_DEVICES=' + visible if visible is not None else 'devices /dev/nvidiaN'})"
        )
    return pool[:count]


def device_files(gpus: list[int]) -> list[str]:
    """The device files a process needs to use exactly these GPUs."""
    if not gpus:
        return []
    return [d for d in CONTROL_DEVICES if os.path.exists(d)] + [f"/dev/nvidia{i}" for i in gpus]
