"""NVIDIA GPUs as the sandboxes see them: device files, the driver's /proc entries, and which
GPUs a run is allotted. GPUs are named by their device minor number (the nvidia-smi index)."""

from __future__ import annotations

import os
import re
from pathlib import Path

PROC_GPUS = Path("/proc/driver/nvidia/gpus")
# Shared by all GPUs: present whenever one GPU is used.
CONTROL_DEVICES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset")


def _information(root: Path) -> dict[Path, str]:
    out = {}
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            out[d] = (d / "information").read_text()
        except OSError:
            continue
    return out


def proc_entries(root: Path = PROC_GPUS) -> dict[int, Path]:
    """device minor -> the driver's directory for that GPU (/proc/driver/nvidia/gpus/<bus id>)."""
    return {
        int(m.group(1)): d
        for d, info in _information(root).items()
        if (m := re.search(r"Device Minor:\s*(\d+)", info))
    }


def uuids(root: Path = PROC_GPUS) -> dict[str, int]:
    """GPU UUID (GPU-...) -> device minor, from the driver's /proc entries."""
    out = {}
    for info in _information(root).values():
        minor = re.search(r"Device Minor:\s*(\d+)", info)
        uuid = re.search(r"GPU UUID:\s*(GPU-[0-9a-fA-F-]+)", info)
        if minor and uuid:
            out[uuid.group(1).lower()] = int(minor.group(1))
    return out


def installed() -> list[int]:
    """The GPUs this machine has (device files /dev/nvidiaN)."""
    return sorted(
        int(m.group(1)) for p in Path("/dev").glob("nvidia*") if (m := re.fullmatch(r"nvidia(\d+)", p.name))
    )


def _visible(value: str, by_uuid: dict[str, int]) -> list[int]:
    """CUDA_VISIBLE_DEVICES as device minors: indices (as Slurm and users set it) or GPU UUIDs (as
    HTCondor sets it); empty means no GPU."""
    pool = []
    for item in (i.strip() for i in value.split(",") if i.strip()):
        if item.isdigit():
            pool.append(int(item))
        elif item.lower() in by_uuid:
            pool.append(by_uuid[item.lower()])
        else:
            raise ValueError(
                f"CUDA_VISIBLE_DEVICES names {item!r}, which is not a GPU index or the UUID of a GPU on "
                "this machine (MIG instances are not supported)"
            )
    return pool


def available(environ: dict[str, str] | None = None, proc_root: Path = PROC_GPUS) -> list[int]:
    """The GPUs the harness itself was given: those in its CUDA_VISIBLE_DEVICES (set by Slurm,
    HTCondor or the user), else the machine's GPUs in order."""
    visible = (environ if environ is not None else os.environ).get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return installed()
    return _visible(visible, uuids(proc_root) if "GPU-" in visible.upper() else {})


def allot(count: int, environ: dict[str, str] | None = None, proc_root: Path = PROC_GPUS) -> list[int]:
    """The first `count` of the available GPUs."""
    if count == 0:
        return []
    visible = (environ if environ is not None else os.environ).get("CUDA_VISIBLE_DEVICES")
    pool = available(environ, proc_root)
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
