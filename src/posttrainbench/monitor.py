"""Resource monitor: samples CPU, memory and the allotted GPUs every few seconds into `RUN_DIR/monitor.csv`.

One row a sample: the run's process tree (CPU and RSS summed over a root process and its descendants),
system memory, and for each allotted GPU its utilisation, memory and power. GPUs are read through NVML,
else through `nvidia-smi`, else left as empty cells (the columns stay, so the file's shape is fixed by
the allotment). The file is appended to and flushed row by row, so a killed job keeps its samples.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

log = logging.getLogger(__name__)

MIB = 1024 * 1024
GPU_FIELDS = ("util_pct", "mem_used_mb", "mem_total_mb", "power_w")
BASE_COLUMNS = ("time", "elapsed_s", "stage", "cpu_percent", "rss_mb", "mem_used_mb", "mem_total_mb")
NVIDIA_SMI_QUERY = [
    "nvidia-smi",
    "--query-gpu=index,utilization.gpu,memory.used,memory.total,power.draw",
    "--format=csv,noheader,nounits",
]
NVIDIA_SMI_TIMEOUT_S = 10

Cell = float | int | str | None
GpuReading = dict[int, tuple[Cell, ...]]  # GPU index -> one cell per GPU_FIELDS


def header(gpus: Iterable[int]) -> list[str]:
    return [*BASE_COLUMNS, *(f"gpu{i}_{field}" for i in gpus for field in GPU_FIELDS)]


class _Nvml:
    """GPU readings through NVML; construction fails (NVMLError, ImportError) where there is no driver."""

    def __init__(self, gpus: list[int]):
        import pynvml

        self._nvml = pynvml
        pynvml.nvmlInit()
        try:
            self._handles: dict[int, Any] = {}
            for i in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(i)
                minor = pynvml.nvmlDeviceGetMinorNumber(handle)
                if minor in gpus:
                    self._handles[minor] = handle
        except Exception:
            pynvml.nvmlShutdown()
            raise

    def read(self) -> GpuReading:
        nvml = self._nvml
        out: GpuReading = {}
        for minor, handle in self._handles.items():
            # Each field on its own: a GPU that does not report power still reports memory.
            util = _try(lambda h=handle: nvml.nvmlDeviceGetUtilizationRates(h).gpu)
            mem = _try(lambda h=handle: self._memory(h))
            power = _try(lambda h=handle: nvml.nvmlDeviceGetPowerUsage(h) / 1000)  # mW -> W
            out[minor] = (
                util,
                None if mem is None else round(mem.used / MIB),
                None if mem is None else round(mem.total / MIB),
                None if power is None else round(power, 2),
            )
        return out

    def _memory(self, handle: Any) -> Any:
        # v2 leaves the driver's reservation out of "used", as nvidia-smi does (v1 counts ~600 MiB on an
        # idle H200); older drivers lack it.
        try:
            return self._nvml.nvmlDeviceGetMemoryInfo(handle, version=self._nvml.nvmlMemory_v2)
        except self._nvml.NVMLError:
            return self._nvml.nvmlDeviceGetMemoryInfo(handle)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._nvml.nvmlShutdown()


class _NvidiaSmi:
    """GPU readings by parsing `nvidia-smi --query-gpu` (its memory figures are MiB, like NVML's here)."""

    def __init__(self) -> None:
        self.read()  # raises where nvidia-smi is missing or fails

    def read(self) -> GpuReading:
        proc = subprocess.run(
            NVIDIA_SMI_QUERY, capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S, check=True
        )
        return parse_nvidia_smi(proc.stdout)

    def close(self) -> None:
        pass


def parse_nvidia_smi(text: str) -> GpuReading:
    """Rows of `index, util, mem used, mem total, power`; "[N/A]", "[Not Supported]" become None."""
    out: GpuReading = {}
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 1 + len(GPU_FIELDS) or not parts[0].isdigit():
            continue
        out[int(parts[0])] = tuple(_number(p) for p in parts[1:])
    return out


def _number(text: str) -> float | int | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() else value


def _try(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except Exception:
        return None


def _open_gpu_source(gpus: list[int]) -> _Nvml | _NvidiaSmi | None:
    if not gpus:
        return None
    for source in (lambda: _Nvml(gpus), _NvidiaSmi):
        try:
            return source()
        except Exception as e:
            log.debug("GPU source unavailable: %s", e)
    return None


class Monitor:
    """Samples every `interval` seconds on a daemon thread while entered; `stage()` labels later rows."""

    def __init__(self, path: Path, interval: float, gpus: list[int], root_pid: int | None = None):
        self.path = Path(path)
        self.interval = interval
        self.gpus = list(gpus)
        self.root_pid = os.getpid() if root_pid is None else root_pid
        self._stage = ""
        self._header = header(self.gpus)
        # cpu_percent() measures since the previous call on the same Process object, so they are kept.
        self._procs: dict[int, psutil.Process] = {}
        self._gpu_source: _Nvml | _NvidiaSmi | None = None
        self._file: Any = None
        self._writer: Any = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    def stage(self, name: str) -> None:
        self._stage = name

    def __enter__(self) -> Monitor:
        self._open_file()
        self._gpu_source = _open_gpu_source(self.gpus)
        self._t0 = time.monotonic()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ptb-monitor", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            # A sample in progress finishes first; the slowest part, nvidia-smi, has its own timeout.
            self._thread.join(timeout=NVIDIA_SMI_TIMEOUT_S + 1)
        with self._lock:
            self._sample_locked()
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
            if self._gpu_source is not None:
                self._gpu_source.close()
                self._gpu_source = None

    def _open_file(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existing = None
        if self.path.exists() and self.path.stat().st_size > 0:
            with self.path.open(newline="") as f:
                existing = next(csv.reader(f), None)
            if existing != self._header:
                n = 1
                while (rotated := self.path.with_name(f"{self.path.stem}.{n}{self.path.suffix}")).exists():
                    n += 1
                self.path.rename(rotated)
                existing = None
        self._file = self.path.open("a", newline="")
        self._writer = csv.writer(self._file)
        if existing is None:
            self._writer.writerow(self._header)
            self._file.flush()

    def _run(self) -> None:
        while True:
            with self._lock:
                self._sample_locked()
            if self._stop.wait(self.interval):
                return

    def _sample_locked(self) -> None:
        if self._file is None or self._file.closed:
            return
        try:
            row = self._row()
            self._writer.writerow(["" if cell is None else cell for cell in row])
            self._file.flush()
        except Exception as e:  # a failed sample must never take the run down with it
            log.debug("monitor sample failed: %s", e)

    def _row(self) -> list[Cell]:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        row: list[Cell] = [now, round(time.monotonic() - self._t0, 2), self._stage]
        cpu, rss = _try(self._tree_usage) or (None, None)
        row += [cpu, rss]
        vm = _try(psutil.virtual_memory)
        row += [None, None] if vm is None else [round(vm.used / MIB), round(vm.total / MIB)]
        reading = _try(self._gpu_source.read) if self._gpu_source is not None else None
        for i in self.gpus:
            row += (reading or {}).get(i, (None,) * len(GPU_FIELDS))
        return row

    def _tree_usage(self) -> tuple[float, float]:
        """CPU percent (100 = one core) and RSS in MiB, summed over the root process and its descendants."""
        root = self._process(self.root_pid)
        tree = [root]
        with contextlib.suppress(psutil.Error):
            tree += root.children(recursive=True)
        cpu = rss = 0.0
        seen: dict[int, psutil.Process] = {}
        for fresh in tree:
            cached = self._procs.get(fresh.pid)
            # Process equality compares creation times too, so a reused pid starts afresh.
            proc = cached if cached is not None and cached == fresh else fresh
            try:
                with proc.oneshot():
                    cpu += proc.cpu_percent()
                    rss += proc.memory_info().rss
            except psutil.Error:
                continue  # vanished (or became inaccessible) mid-sample
            seen[proc.pid] = proc
        self._procs = seen
        return round(cpu, 1), round(rss / MIB, 1)

    def _process(self, pid: int) -> psutil.Process:
        cached = self._procs.get(pid)
        if cached is not None and cached.is_running():
            return cached
        return psutil.Process(pid)
