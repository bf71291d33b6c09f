"""Extending posttrainbench without touching it: a separate package (tests/plugin_pkg) installed into
this environment adds a task and an agent through entry points, which `ptb list` shows and `ptb run`
runs end to end; the `script` agent's environment contract; `ptb new` skeletons passing their own
tests once installed; `ptb validate task` passing on arith and failing a broken task with reasons."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SHARED_DATA, ptb, record, run_ptb, script_agent

PLUGIN = Path(__file__).parent / "plugin_pkg"


def pip(*args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def install(package: Path) -> None:
    """Into this environment, as a user would (not in development mode: its files land in the
    environment, which the sandbox shows the agent)."""
    pip("install", "--no-deps", "--no-build-isolation", "--no-index", str(package))


@pytest.fixture(scope="module")
def plugin(tmp_path_factory, ptb_home):
    copy = tmp_path_factory.mktemp("plugin") / PLUGIN.name  # the build leaves nothing in the checkout
    shutil.copytree(PLUGIN, copy)
    install(copy)
    yield
    pip("uninstall", "-y", "ptb-plugin-example")


def test_plugin_task_and_agent_are_listed_with_their_package(plugin):
    tasks = ptb("list", "tasks", check=True)
    line = next(x for x in tasks.stdout.splitlines() if x.strip().startswith("plugin-parity"))
    assert "ptb-plugin-example 0.1.0" in line
    arith = next(x for x in tasks.stdout.splitlines() if x.strip().startswith("arith"))
    assert "built in" in arith
    # an entry point that cannot be imported is reported, and nothing else suffers
    assert "not loaded: plugin-missing" in tasks.stderr and "ModuleNotFoundError" in tasks.stderr
    agents = ptb("list", "agents", check=True)
    assert any(
        x.strip().startswith("plugin-copy") and "ptb-plugin-example" in x for x in agents.stdout.splitlines()
    )
    missing = ptb("validate", "task", "plugin-missing")
    assert missing.returncode == 2 and "could not be loaded" in missing.stderr


def test_plugin_task_and_agent_run_end_to_end(plugin, results):
    _, run = run_ptb(
        results, "run", "--task", "plugin-parity", "--model", "ptb-tiny", "--agent", "plugin-copy",
        "--minutes", "2", "--network", "none",
    )  # fmt: skip
    rec = record(run)
    assert rec["solve"]["end"] == "exited" and rec["final_model"]["state"] == "ok"
    assert rec["outcome"]["status"] == "complete", rec["outcome"]
    assert rec["versions"]["ptb-plugin-example"] == "0.1.0"
    assert (
        "copying posttrainbench/ptb-tiny-base for task plugin-parity"
        in (run / "agent/output.log").read_text()
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == "plugin-parity" and metrics["n"] == 40
    # the agent's evaluate.py is the plugin task's
    assert 'main(task="plugin-parity")' in (run / "workspace/evaluate.py").read_text()


def test_validate_fails_a_broken_task_with_reasons(plugin):
    proc = ptb("validate", "task", "plugin-broken", "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks["data"]["status"] == "fail" and checks["data"]["reasons"] == [
        "1 of 10 samples have no target: q0"
    ]
    assert checks["scorer"]["status"] == "fail"
    assert any(r.startswith("wrong answers: 10 of 10") for r in checks["scorer"]["reasons"])
    assert checks["time"]["status"] == "fail" and "over the 2 h budget" in checks["time"]["reasons"][0]


def test_validate_arith_meets_the_bar(ptb_home):
    proc = ptb("validate", "task", "arith", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks["data"]["status"] == checks["scorer"]["status"] == checks["time"]["status"] == "pass"
    assert checks["data"]["detail"].startswith("200 samples")
    assert checks["models"]["status"] == "skip" and "no CUDA GPU" in checks["models"]["detail"]


def test_validate_models_check_runs_the_models(ptb_home):
    """ptb-tiny and its instruct twin are built locally, so the models check runs on CPU: neither can do
    arithmetic, and the check says so."""
    proc = ptb("validate", "task", "arith", "--models", "ptb-tiny", "--limit", "10", "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    models = next(c for c in json.loads(proc.stdout)["checks"] if c["name"] == "models")
    assert models["status"] == "fail" and models["detail"].startswith(
        "ptb-tiny 0.000 -> instruct 0.000 (n=10)"
    )
    assert "not significantly above chance" in models["reasons"][0]


def test_script_agent_contract(results, tmp_path):
    body = """set -eu
env | grep -E '^(PROMPT|AGENT_CONFIG|PTB_MODEL|PTB_TASK|PTB_DEADLINE|NUM_GPUS)=' | cut -d= -f1 | sort > seen.txt
echo "$PTB_MODEL $PTB_TASK $AGENT_CONFIG $NUM_GPUS" > values.txt
test -n "$PROMPT" && test "$PTB_DEADLINE" -gt "$(date +%s)"
python -c "
import os
from transformers import AutoModelForCausalLM, AutoTokenizer
AutoTokenizer.from_pretrained(os.environ['PTB_MODEL']).save_pretrained('final_model')
AutoModelForCausalLM.from_pretrained(os.environ['PTB_MODEL']).save_pretrained('final_model')
"
"""
    agent = script_agent(tmp_path, "contract", body)
    _, run = run_ptb(
        results, "run", "--task", "arith", "--model", "ptb-tiny", "--agent", "script", "--agent-config", str(agent),
        "--minutes", "2", "--network", "none",
    )  # fmt: skip
    rec = record(run)
    assert rec["solve"]["end"] == "exited" and rec["final_model"]["state"] == "ok", rec["solve"]
    ws = run / "workspace"
    assert (ws / "seen.txt").read_text().split() == sorted(
        ["AGENT_CONFIG", "NUM_GPUS", "PROMPT", "PTB_DEADLINE", "PTB_MODEL", "PTB_TASK"]
    )
    assert (ws / "values.txt").read_text().split() == [
        "posttrainbench/ptb-tiny-base",
        "arith",
        str(agent),
        "0",
    ]
    assert rec["outcome"]["final_score"] is not None


@pytest.mark.parametrize("kind,name", [("task", "demo-quiz"), ("agent", "demo-loop")])
def test_new_skeleton_passes_its_own_tests(kind, name, tmp_path, ptb_home):
    made = ptb("new", kind, name, "--dir", str(tmp_path), check=True)
    package = tmp_path / f"ptb-{kind}-{name}"
    assert str(package) in made.stdout
    install(package)
    try:
        listed = ptb("list", f"{kind}s", check=True)
        assert any(
            x.strip().startswith(name) and f"ptb-{kind}-{name} 0.1.0" in x for x in listed.stdout.splitlines()
        )
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=package, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert " passed" in proc.stdout and "skipped" not in proc.stdout
    finally:
        pip("uninstall", "-y", f"ptb-{kind}-{name}")


def test_new_refuses_bad_names_and_existing_folders(tmp_path):
    bad = ptb("new", "task", "Law_Bench", "--dir", str(tmp_path))
    assert bad.returncode == 2 and "not a usable task name" in bad.stderr
    ptb("new", "agent", "mine", "--dir", str(tmp_path), check=True)
    again = ptb("new", "agent", "mine", "--dir", str(tmp_path))
    assert again.returncode == 2 and "already exists" in again.stderr


@pytest.mark.parametrize("task", ["gsm8k", "aime2025", "bfcl", "humaneval", "gpqamain"])
def test_builtin_benchmarks_data_and_scorers_meet_the_bar(task, ptb_home, monkeypatch):
    """Gold answers (an answer line for GPQA, the ground-truth calls for BFCL, the canonical solution
    run in the code sandbox for HumanEval) score 1 and another item's gold answer 0, on the real data."""
    monkeypatch.setenv("PTB_DATA_DIR", str(SHARED_DATA))
    proc = ptb("validate", "task", task, "--json")
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks["data"]["status"] == "pass", checks["data"]
    assert checks["scorer"]["status"] == "pass", checks["scorer"]["reasons"]
