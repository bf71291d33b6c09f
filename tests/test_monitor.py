"""The resource monitor over real processes: the process tree's CPU and memory, stage labels, GPU
columns (empty without a driver; parsed from `nvidia-smi`), appending and rotating the file, and a
prompt stop."""

from __future__ import annotations

import csv
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from posttrainbench.monitor import BASE_COLUMNS, Monitor, header


def nvml_works() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        return True
    except Exception:
        return False


no_nvml = pytest.mark.skipif(nvml_works(), reason="NVML is available here, so nvidia-smi is not consulted")


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


# A parent that spawns a child busy-looping ~1.5 s, so the load sits one level below the root.
TREE = textwrap.dedent(
    """
    import subprocess, sys
    child = "import time\\nend = time.monotonic() + 1.5\\nwhile time.monotonic() < end: pass"
    subprocess.run([sys.executable, "-c", child], check=True)
    """
)


def test_process_tree_and_stages(tmp_path):
    path = tmp_path / "monitor.csv"
    proc = subprocess.Popen([sys.executable, "-c", TREE])
    try:
        with Monitor(path, 0.2, [], root_pid=proc.pid) as mon:
            mon.stage("solve")
            time.sleep(0.8)
            mon.stage("evaluate")
            proc.wait(timeout=10)
    finally:
        proc.kill()
    head, rows = read_rows(path)
    assert head == list(BASE_COLUMNS)
    assert {"solve", "evaluate"} <= {r["stage"] for r in rows}
    assert max(float(r["cpu_percent"]) for r in rows if r["cpu_percent"]) > 50
    assert any(r["rss_mb"] and float(r["rss_mb"]) > 0 for r in rows)
    assert all(float(r["mem_total_mb"]) > 0 for r in rows)
    elapsed = [float(r["elapsed_s"]) for r in rows]
    assert elapsed == sorted(elapsed) and elapsed[-1] > elapsed[0]
    # The last sample comes after the root exited: its process cells are empty, the row is still there.
    assert rows[-1]["stage"] == "evaluate" and rows[-1]["cpu_percent"] == ""


@no_nvml
def test_gpu_columns_empty_without_a_driver(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no nvidia-smi either
    path = tmp_path / "monitor.csv"
    with Monitor(path, 0.2, [0]) as mon:
        mon.stage("solve")
    head, rows = read_rows(path)
    gpu_cols = ["gpu0_util_pct", "gpu0_mem_used_mb", "gpu0_mem_total_mb", "gpu0_power_w"]
    assert head == [*BASE_COLUMNS, *gpu_cols]
    assert len(rows) >= 2  # the first sample at once, the last at exit
    assert all(r[c] == "" for r in rows for c in gpu_cols)
    assert all(float(r["rss_mb"]) > 0 for r in rows)


@no_nvml
def test_nvidia_smi_fallback(tmp_path, monkeypatch):
    # A stand-in for nvidia-smi in its real output format; acceptable only because there is no GPU here.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\nprintf '0, 37, 1024, 81559, 71.25\\n1, [N/A], 5, 81559, [Not Supported]\\n'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    path = tmp_path / "monitor.csv"
    with Monitor(path, 0.2, [1, 0]):
        pass
    head, rows = read_rows(path)
    assert head == header([1, 0])
    for r in rows:
        assert (r["gpu1_util_pct"], r["gpu1_mem_used_mb"], r["gpu1_mem_total_mb"], r["gpu1_power_w"]) == (
            "",
            "5",
            "81559",
            "",
        )
        assert (r["gpu0_util_pct"], r["gpu0_mem_used_mb"], r["gpu0_power_w"]) == ("37", "1024", "71.25")


def test_append_same_header_rotate_different(tmp_path):
    path = tmp_path / "monitor.csv"
    with Monitor(path, 0.2, []) as mon:
        mon.stage("solve")
    _, first = read_rows(path)
    with Monitor(path, 0.2, []) as mon:
        mon.stage("evaluate")
    head, rows = read_rows(path)
    assert head == list(BASE_COLUMNS)
    assert rows[: len(first)] == first and len(rows) > len(first)
    assert all(r["elapsed_s"] != "elapsed_s" for r in rows)

    with Monitor(path, 0.2, [3]):
        pass
    assert read_rows(tmp_path / "monitor.1.csv")[1] == rows
    assert read_rows(path)[0] == header([3])
    with Monitor(path, 0.2, []):
        pass
    assert read_rows(tmp_path / "monitor.2.csv")[0] == header([3])
    assert read_rows(path)[0] == list(BASE_COLUMNS)


def test_exit_does_not_wait_out_the_interval(tmp_path):
    path = tmp_path / "monitor.csv"
    with Monitor(path, 30, []):
        time.sleep(0.1)
        start = time.monotonic()
    assert time.monotonic() - start < 2
    _, rows = read_rows(path)
    assert len(rows) == 2
