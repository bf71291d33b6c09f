"""Shared fixtures: a private PTB_HOME (with ptb-tiny built once per session) and helpers that
run the real `ptb` command line in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# The CLI agents `make test` installs (tests that need one skip when it is missing).
os.environ.setdefault("PTB_AGENTS_DIR", str(Path(__file__).resolve().parents[1] / ".agents"))


@pytest.fixture(scope="session")
def ptb_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("ptb_home")
    os.environ["PTB_HOME"] = str(home)
    os.environ.pop("PTB_MODEL_CACHE", None)
    os.environ["HF_HUB_OFFLINE"] = "1"
    from posttrainbench import models, settings

    models.snapshot(models.get("ptb-tiny"), settings.model_cache())
    return home


@pytest.fixture(scope="session")
def results(tmp_path_factory, ptb_home) -> Path:
    """One results directory for the session, so the baseline evaluation is computed once."""
    return tmp_path_factory.mktemp("results")


def ptb(*args: str, check: bool = False, timeout: float = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "posttrainbench", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"ptb {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_ptb(results: Path, *args: str, check: bool = True) -> tuple[subprocess.CompletedProcess, Path]:
    """`ptb run ... --out results`; returns the process and the one run directory it created."""
    before = set(results.iterdir()) if results.exists() else set()
    proc = ptb(*args, "--out", str(results), check=check)
    created = [d for d in set(results.iterdir()) - before if d.is_dir() and d.name != "baselines"]
    assert len(created) == 1, (created, proc.stdout, proc.stderr)
    return proc, created[0]


def record(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def script_agent(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.sh"
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(0o755)
    return path
