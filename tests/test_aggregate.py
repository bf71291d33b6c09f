"""Aggregation on hand-built records with known answers (substitution of flagged, failed and missing
runs by the zero-shot score, weights from the baselines, seeds, bootstrap CI), the SQLite index over
real run directories and the leaderboard it keeps until a run changes, and the original's results
tree imported and aggregated into the expected table."""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3

import pytest

from conftest import ptb
from posttrainbench import models
from posttrainbench.results import formats, index
from posttrainbench.results.aggregate import ORIGINAL_WEIGHTS, Rules, aggregate, leaderboard
from posttrainbench.results.legacy import import_legacy
from posttrainbench.results.schema import IndexedRun
from posttrainbench.rundir import RunDir
from posttrainbench.specs import IntegrityDecision, Outcome, RunRecord, RunSpec
from test_legacy_import import tree  # noqa: F401  (the original's layout, as a fixture)

Q, G = "Qwen3-1.7B-Base", "gemma-3-4b-pt"


def run(agent, task, model, final, seed=0, flagged=False, created="2026-01-01", **kw) -> IndexedRun:
    fields = dict(run_id=f"{agent}-{task}-{model}-{seed}-{created}", path="x", agent=agent,
                  label=kw.pop("label", agent), task=task, model=model, seed=seed, budget_hours=10,
                  status="complete", final_score=final, flagged=flagged, created_at=created)  # fmt: skip
    return IndexedRun(**{**fields, **kw})


BASELINES = [
    run("zero-shot", "gsm8k", Q, 0.10), run("zero-shot", "gsm8k", G, 0.20),
    run("zero-shot", "humaneval", Q, 0.30), run("zero-shot", "humaneval", G, 0.10),
    run("instruct", "gsm8k", Q, 0.60), run("instruct", "gsm8k", G, 0.80),
    run("instruct", "humaneval", Q, 0.50), run("instruct", "humaneval", G, 0.50),
]  # fmt: skip
AGENT_X = [
    run("x", "gsm8k", Q, 0.5, seed=0),
    run("x", "gsm8k", G, 0.7, seed=0, flagged=True),  # counts as zero-shot 0.20
    run("x", "humaneval", Q, 0.4, seed=0),  # (humaneval, G, seed 0) has no run: zero-shot 0.10
    run("x", "gsm8k", Q, 0.6, seed=1),
    run("x", "gsm8k", G, 0.1, seed=1, created="2025-12-01"),  # older run of the same cell: not counted
    run("x", "gsm8k", G, 0.4, seed=1),
    run("x", "humaneval", Q, 0.5, seed=1),
    run("x", "humaneval", G, None, seed=1, status="incomplete", failure_class="no_final_model"),  # 0.10
]
W_GSM8K = 0.3 / 0.85  # 1/(0.70 - 0.15) and 1/(0.50 - 0.20), normalised
W_HUMANEVAL = 0.55 / 0.85


def test_substitution_weights_seeds_and_ci():
    board = aggregate(BASELINES + AGENT_X)
    assert board.weights_source == "baselines"
    assert board.weights == pytest.approx({"gsm8k": W_GSM8K, "humaneval": W_HUMANEVAL})
    x = next(r for r in board.rows if r.agent == "x")
    seed0 = W_GSM8K * (0.5 + 0.2) / 2 + W_HUMANEVAL * (0.4 + 0.1) / 2
    seed1 = W_GSM8K * (0.6 + 0.4) / 2 + W_HUMANEVAL * (0.5 + 0.1) / 2
    assert x.avg == pytest.approx(100 * (seed0 + seed1) / 2, abs=1e-3)
    assert x.std == pytest.approx(100 * abs(seed0 - seed1) / math.sqrt(2), abs=1e-3)
    assert (x.runs, x.flagged, x.substituted, x.missing, x.seeds) == (8, 1, 2, 1, 2)
    assert x.per_benchmark["gsm8k"] == pytest.approx(100 * (0.35 + 0.5) / 2, abs=1e-3)
    assert x.per_cell["humaneval"][G] == pytest.approx(10.0)
    # Whole seeds resampled: with two seeds a quarter of the resamples draw seed 0 twice (and a quarter
    # seed 1), so the 2.5% and 97.5% percentiles are the two seeds' averages.
    assert (x.ci_low, x.ci_high) == pytest.approx((100 * seed0, 100 * seed1), abs=1e-3)
    assert x.ci_low < x.avg < x.ci_high
    assert x.rank == 1 and x.flag_rate == pytest.approx(1 / 8, abs=1e-4)
    zero, inst = (next(r for r in board.rows if r.agent == k) for k in ("zero-shot", "instruct"))
    assert zero.baseline and inst.baseline and zero.rank == inst.rank == 0
    assert inst.avg == pytest.approx(100 * (W_GSM8K * 0.7 + W_HUMANEVAL * 0.5), abs=1e-3)
    # Without substitution the flagged and failed runs and the missing cell are left out instead.
    raw = next(r for r in aggregate(BASELINES + AGENT_X, Rules(substitute=False)).rows if r.agent == "x")
    assert raw.avg is None and raw.per_cell["gsm8k"][G] == pytest.approx(40.0)  # seed 1 only
    assert raw.substituted == 0 and raw.per_cell["humaneval"][G] is None


def test_weight_fallbacks_smoke_runs_and_entries():
    runs = [run("zero-shot", "gsm8k", Q, 0.1), run("zero-shot", "aime2025", Q, 0.0),
            run("y", "gsm8k", Q, 0.5), run("y", "aime2025", Q, 0.1),
            run("y", "gsm8k", Q, 0.9, smoke=True),
            run("y", "gsm8k", Q, 0.7, label="y +continue", continued=True),
            run("y", "aime2025", Q, None, status=None)]  # fmt: skip
    board = aggregate(runs)
    assert board.weights_source == "original"  # no instruct baselines: the original's factors
    total = ORIGINAL_WEIGHTS["gsm8k"] + ORIGINAL_WEIGHTS["aime2025"]
    assert board.weights["gsm8k"] == pytest.approx(ORIGINAL_WEIGHTS["gsm8k"] / total)
    assert board.left_out == {"smoke runs (--eval-limit)": 1, "no outcome yet": 1}
    w = board.weights
    entries = {r.agent: r.avg for r in board.rows if not r.baseline}  # continuation: its own entry
    assert entries == pytest.approx(
        {"y": 100 * (w["gsm8k"] * 0.5 + w["aime2025"] * 0.1), "y +continue": 100 * w["gsm8k"] * 0.7}, abs=1e-3
    )  # aime missing: 0.0
    assert aggregate(runs, Rules(weights="uniform")).weights == {"aime2025": 0.5, "gsm8k": 0.5}
    with pytest.raises(ValueError, match="missing for"):
        aggregate(runs, Rules(weights="baselines"))
    md = formats.markdown(board)
    assert md.splitlines()[0].startswith("| rank | agent | scaffold | average | aime2025 | gsm8k |")
    rows = json.loads(formats.json_text(board))
    assert {"agent", "avg", "ci_low", "ci_high", "per_benchmark", "runs", "flagged", "minutes",
            "cost_usd"} <= set(rows[0])  # fmt: skip


def _record(results, name, task, model, agent, final, base, flagged=False, seed=0, **spec):
    run_dir = RunDir(results / name)
    run_dir.path.mkdir(parents=True)
    rec = RunRecord(run_id=name, spec=RunSpec(task=task, model=model, agent=agent, budget_seconds=36000,
                                              seed=seed, **spec),
                    model_card=models.get(model), results_root=str(results),
                    integrity=IntegrityDecision(flagged=flagged, reasons=["contamination"] * flagged),
                    outcome=Outcome(status="complete", flagged=flagged, base_score=base, final_score=final,
                                    counted_score=base if flagged else final, minutes_used=30))  # fmt: skip
    run_dir.save(rec)
    return run_dir.path


def test_index_tracks_the_run_directories(tmp_path):
    results = tmp_path / "results"
    _record(results, "a", "gsm8k", Q, "codex", 0.5, 0.1, agent_config="gpt-5.5,base_url=http://x,effort=high")
    b = _record(results, "exp/b", "gsm8k", G, "codex", 0.6, 0.2, agent_config="gpt-5.5,effort=high")
    _record(results, "exp/b/workspace/c", "gsm8k", G, "noop", 0.0, 0.0)  # inside a run: not a run
    _record(results, ".attempts/b/attempt-1", "gsm8k", G, "codex", 0.0, 0.2)  # an earlier attempt
    _record(results, "d", "gsm8k", G, "codex", 0.9, 0.2, flagged=True, eval_limit=5)
    (results / "broken").mkdir()
    (results / "broken" / "run.json").write_text("{not json")
    path, counts = index.build(results)
    assert path == results / "index.sqlite"
    assert counts == {"added": 3, "updated": 0, "removed": 0, "unchanged": 0, "unreadable": 1}
    runs = {r.path: r for r in index.load(results)}
    assert set(runs) == {"a", "exp/b", "d"}
    assert runs["a"].label == runs["exp/b"].label == "codex:gpt-5.5,effort=high"
    assert runs["d"].smoke and runs["d"].flagged and runs["d"].flag_reasons == ["contamination"]
    rec = RunDir(b).load()
    rec.outcome.final_score = 0.7
    RunDir(b).save(rec)
    (results / "a" / "run.json").unlink()
    assert index.build(results)[1] == {
        "added": 0,
        "updated": 1,
        "removed": 1,
        "unchanged": 1,
        "unreadable": 1,
    }
    assert {r.path: r.final_score for r in index.load(results)}["exp/b"] == 0.7
    out = json.loads(ptb("leaderboard", str(results), "--format", "json", check=True).stdout)
    assert [(r["agent"], r["avg"]) for r in out] == [("codex:gpt-5.5,effort=high", pytest.approx(70.0))]


def _rewrite(run_dir, final=None):
    mtime = (run_dir / "run.json").stat().st_mtime_ns
    if final is None:
        (run_dir / "run.json").write_text("{not json")
    else:
        rec = RunDir(run_dir).load()
        rec.outcome.final_score = final
        RunDir(run_dir).save(rec)
    os.utime(run_dir / "run.json", ns=(mtime + 10**9, mtime + 10**9))  # past the clock's granularity


def test_the_index_keeps_the_board_until_a_run_changes(tmp_path):
    results = tmp_path / "results"
    _record(results, "zero", "gsm8k", Q, "zero-shot", 0.1, 0.1)
    x = _record(results, "x/s0", "gsm8k", Q, "codex", 0.5, 0.1)
    _record(results, "x/s1", "gsm8k", Q, "codex", 0.7, 0.1, seed=1)
    (results / "broken").mkdir()
    (results / "broken" / "run.json").write_text("{not json")

    def avg(rules=None):
        return {r.agent: r.avg for r in leaderboard(results, rules).rows}["codex"]

    def forge(value):  # what the index keeps is what a repeat call reads
        with sqlite3.connect(results / index.INDEX_FILE) as db:
            (kept,) = db.execute("SELECT board FROM boards").fetchone()
            forged = json.loads(kept)
            next(r for r in forged["rows"] if r["agent"] == "codex")["avg"] = value
            db.execute("UPDATE boards SET board = ?", (json.dumps(forged),))

    assert avg() == pytest.approx(60.0)
    assert avg() == pytest.approx(60.0)
    forge(-1.0)
    assert avg() == -1.0  # nothing changed: read back
    assert index.build(results)[1] == {
        "added": 0,
        "updated": 0,
        "removed": 0,
        "unchanged": 3,
        "unreadable": 1,
    }
    assert avg() == -1.0  # an unreadable run is tried again, but changes nothing
    assert avg(Rules(bootstrap=0)) == pytest.approx(60.0)  # other rules: their own board
    _rewrite(x, 0.9)
    assert avg() == pytest.approx(80.0)  # a changed run
    forge(-1.0)
    with sqlite3.connect(results / index.INDEX_FILE) as db:
        key, generation, kept = db.execute("SELECT key, generation, board FROM boards").fetchone()
    _record(results, "x/s2", "gsm8k", Q, "codex", 0.2, 0.1, seed=2)
    index.build(results)
    index.keep_board(results, key, generation, kept)  # as if computed while the new run came in
    assert avg() == pytest.approx(60.0)  # a new run
    forge(-1.0)
    shutil.rmtree(x)
    assert avg() == pytest.approx(45.0)  # a deleted run
    forge(-1.0)
    (results / "broken" / "run.json").unlink()
    assert avg() == -1.0  # the unreadable run is gone: no run changed
    out = json.loads(ptb("leaderboard", str(results), "--format", "json", check=True).stdout)
    assert [r["avg"] for r in out if r["agent"] == "codex"] == [-1.0]  # the command reads it too
    _rewrite(x.parent / "s1")  # unreadable now: the run keeps the row it had...
    assert avg() == -1.0
    shutil.rmtree(x.parent)  # ...until its directory goes
    assert [r.agent for r in leaderboard(results).rows] == ["zero-shot"]


def test_legacy_tree_gives_the_expected_table(tree, tmp_path):  # noqa: F811
    out = tmp_path / "imported"
    import_legacy(tree, out)
    board = aggregate(index.load(out))
    # Baselines: zero-shot gsm8k 0.2/0.1, humaneval 0.3/0.15; instruct 0.7/0.8, 0.6/0.5.
    w_g, w_h = 0.325 / 0.925, 0.6 / 0.925  # 1/(0.75 - 0.15), 1/(0.55 - 0.225), normalised
    assert board.weights == pytest.approx({"gsm8k": w_g, "humaneval": w_h})
    # run1: gsm8k Q 0.6 (newest cluster id), G flagged (judgement missing) -> 0.1; humaneval Q
    # contaminated -> 0.3, G no metrics -> 0.15. run2: every cell counts as the base model.
    run1 = w_g * (0.6 + 0.1) / 2 + w_h * (0.3 + 0.15) / 2
    run2 = w_g * (0.2 + 0.1) / 2 + w_h * (0.3 + 0.15) / 2
    (entry,) = [r for r in board.rows if not r.baseline]
    assert entry.agent == "claude-code:claude-opus-4-6" and entry.seeds == 2
    assert entry.avg == pytest.approx(100 * (run1 + run2) / 2, abs=1e-3)
    assert entry.std == pytest.approx(100 * (run1 - run2) / math.sqrt(2), abs=1e-3)
    base = {r.agent: r.avg for r in board.rows if r.baseline}
    assert base == pytest.approx(
        {"zero-shot": 100 * run2, "instruct": 100 * (w_g * 0.75 + w_h * 0.55)}, abs=1e-3
    )
    table = ptb("leaderboard", str(out), "--format", "md", check=True).stdout
    assert f"| 1 | claude-code:claude-opus-4-6 | claude-code | {entry.avg:.1f} ± {entry.std:.1f}" in table
