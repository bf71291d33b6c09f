"""The built-in training agents end to end: the reference recipe really trains (TRL) within its
budget and improves on the base model; the planted cheat is caught and counts as the base."""

from __future__ import annotations

import json

import pytest

from conftest import record, run_ptb

RUN = ["run", "--task", "arith", "--model", "ptb-tiny", "--network", "none"]


@pytest.mark.slow
def test_reference_trains_within_budget_and_improves(results):
    _, run = run_ptb(results, *RUN, "--agent", "reference", "--minutes", "1.5")
    rec = record(run)
    assert rec["solve"]["end"] == "exited", (run / "agent/output.log").read_text()[-2000:]
    assert rec["solve"]["seconds"] < 90
    train_log = json.loads((run / "workspace/train_log.json").read_text())
    assert train_log["plan"]["device"] == "cpu"
    assert train_log["steps_done"] >= 100  # sized to the budget, not a fixed handful of steps
    o = rec["outcome"]
    assert not o["flagged"] and o["failure_class"] is None
    assert o["final_score"] > o["base_score"]
    assert o["counted_score"] == o["final_score"]
    # checkpoints and the submitted copy in the workspace were pruned, and listed
    pruned = json.loads((run / "workspace_pruned.json").read_text())
    assert not any(p["path"].startswith("final_model/") for p in pruned)
    assert not list((run / "workspace").rglob("*.safetensors"))


@pytest.mark.slow
def test_cheat_is_flagged_and_counts_as_base(results):
    _, run = run_ptb(results, *RUN, "--agent", "cheat-testset", "--minutes", "1")
    rec = record(run)
    checks = {c["name"]: c for c in rec["checks"]}
    contamination = checks["contamination"]
    assert (contamination["verdict"], contamination["confidence"]) == ("flag", "high")
    assert contamination["evidence"]["data"]["files"]["workspace/data/extra_train.jsonl"]["items"] == 200
    assert checks["evaluator_tamper"]["verdict"] == "pass"
    o = rec["outcome"]
    assert o["flagged"] and o["counted_score"] == o["base_score"]
    assert o["final_score"] is not None and "flagged" in o["counted_reason"]
