"""The bench scripts run and write their JSON (their numbers are read by people, not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_overhead_bench_runs(tmp_path):
    out = tmp_path / "overhead.json"
    subprocess.run(
        [
            sys.executable,
            str(BENCH / "overhead.py"),
            "--runs",
            "1",
            "--cache-gib",
            "0",
            "2",
            "--json",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    data = json.loads(out.read_text())
    assert [r["cache_extra_gib"] for r in data["rows"]] == [0, 2]
    assert all(r["total"] > 0 for r in data["rows"])


def test_contamination_bench_finds_what_it_planted(tmp_path):
    out = tmp_path / "contamination.json"
    subprocess.run(
        [sys.executable, str(BENCH / "contamination.py"), "--mb", "20", "--json", str(out)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    data = json.loads(out.read_text())
    assert data["missed"] == [] and data["planted"] >= 1
    assert data["rows"][0]["method"] == "ptb window scanner"


def test_lineage_bench_runs(tmp_path):
    out = tmp_path / "lineage.json"
    subprocess.run(
        [sys.executable, str(BENCH / "lineage.py"), "--layers", "1", "--repeats", "1", "--json", str(out)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    data = json.loads(out.read_text())
    assert set(data["seconds"]) == {"read_load", "read_touch", "check"}
