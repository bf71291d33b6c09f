"""The bubblewrap sandbox for real: read-only protected files, hidden paths, private /tmp,
no network when offline, cleared environment."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from posttrainbench import sandbox
from posttrainbench.errors import UserError
from posttrainbench.sandbox.bwrap import Bubblewrap
from posttrainbench.sandbox.plan import Mount, MountPlan

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


def run_in(plan: MountPlan, script: str) -> subprocess.CompletedProcess:
    box = Bubblewrap(shutil.which("bwrap"))
    return subprocess.run(
        box.command(plan, ["/bin/sh", "-c", script]), env=box.env(plan), capture_output=True, text=True
    )


@pytest.fixture
def layout(tmp_path):
    root = tmp_path / "results"
    ws = root / "run1" / "workspace"
    ws.mkdir(parents=True)
    (ws / "evaluate.py").write_text("print('pristine')\n")
    other = root / "run0"
    other.mkdir()
    (other / "secret.txt").write_text("another run's data")
    plan = MountPlan(
        mounts=[
            Mount(kind="tmpfs", target=str(root)),
            Mount(kind="rw", source=str(ws), target=str(ws)),
            Mount(kind="ro", source=str(ws / "evaluate.py"), target=str(ws / "evaluate.py")),
        ],
        workdir=str(ws),
        env={"PATH": "/usr/bin:/bin", "ONLY": "this"},
        network=False,
    )
    return plan, ws, other


def test_protected_file_is_read_only_inside_writable_workspace(layout):
    plan, ws, _ = layout
    proc = run_in(
        plan,
        "echo x >> evaluate.py; rm -f evaluate.py; mv evaluate.py e2.py; echo new > mine.txt; cat evaluate.py",
    )
    assert "pristine" in proc.stdout
    assert (ws / "evaluate.py").read_text() == "print('pristine')\n"
    assert (ws / "mine.txt").read_text() == "new\n"


def test_other_runs_hidden_tmp_private_env_cleared(layout, tmp_path):
    plan, _, other = layout
    proc = run_in(plan, f"ls {other} 2>&1; echo tmp > /tmp/t && cat /tmp/t; env")
    assert "secret.txt" not in proc.stdout
    assert "tmp" in proc.stdout
    env_lines = {line.split("=", 1)[0] for line in proc.stdout.splitlines() if "=" in line}
    assert "ONLY" in env_lines and "HOME" not in env_lines


def test_offline_means_no_network(layout):
    plan, _, _ = layout
    proc = run_in(plan, "cat /proc/net/dev")
    interfaces = [line.split(":")[0].strip() for line in proc.stdout.splitlines() if ":" in line]
    assert interfaces == ["lo"]


def test_resolve():
    assert sandbox.resolve("none").name == "none"
    assert sandbox.resolve("auto").name == "bwrap"
    assert sandbox.resolve("bwrap").name == "bwrap"
    with pytest.raises(UserError):
        sandbox.resolve("docker")
