"""End-to-end runs through the real `ptb` command line: the run directory, every failure mode of
an agent (crash, hang past the deadline, no final model, failure to start, unloadable model),
the integrity checks, and re-running single stages on an existing run directory."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import ptb, record, run_ptb, script_agent
from posttrainbench.lifecycle.prepare import TOOL_FILES

RUN = ["run", "--task", "arith", "--model", "ptb-tiny", "--network", "none"]


def run_script(results, tmp_path, name, body, *extra):
    agent = script_agent(tmp_path, name, body)
    proc, run = run_ptb(results, *RUN, "--agent", "script", "--agent-config", str(agent), *extra)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc, run


@pytest.fixture(scope="module")
def noop_run(results):
    return run_ptb(results, *RUN, "--agent", "noop", "--minutes", "2")


def test_noop_run_directory(noop_run):
    _proc, run = noop_run
    rec = record(run)
    for name in (
        "run.json",
        "prompt.txt",
        "integrity.json",
        "metrics.json",
        "agent/output.log",
        "final_model/config.json",
    ):
        assert (run / name).is_file(), name
    assert rec["outcome"]["status"] == "complete" and rec["outcome"]["failure_class"] is None
    assert rec["solve"]["end"] == "exited" and rec["final_model"]["state"] == "ok"
    # noop submits the base model: the final score is the baseline's, and counts.
    o = rec["outcome"]
    assert o["final_score"] == o["base_score"] == o["counted_score"]
    assert set(rec["stages"]) == {"prepare", "solve", "collect", "check", "evaluate", "record"}
    assert all(s["ok"] for s in rec["stages"].values())
    for pkg in ("torch", "transformers", "trl", "inspect_ai", "python"):
        assert rec["versions"][pkg]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n"] == 200 and metrics["decoding"]["do_sample"] is False
    assert metrics["template"] == "qwen3.jinja"
    # timestamps on every line of the agent's output
    assert all(line.startswith("[20") for line in (run / "agent/output.log").read_text().splitlines())
    # weights are kept once (final_model/), not in the workspace
    assert not (run / "workspace/final_model").exists()


def test_prompt_states_the_rules(noop_run):
    _, run = noop_run
    prompt = (run / "prompt.txt").read_text()
    for needle in ("posttrainbench/ptb-tiny-base", "Arith", "2 minutes", "final_model", "timer.sh",
                   "--limit", "test data", "evaluate.py", "instruct", "Finish every process",
                   "tools/contamination_check.py", "hosted LLM APIs"):  # fmt: skip
        assert needle in prompt, needle


def test_workspace_has_task_files_and_a_timer(noop_run):
    _, run = noop_run
    ws = run / "workspace"
    for name in ("evaluate.py", "templates/qwen3.jinja", "arith_train.jsonl", "timer.sh", *TOOL_FILES):
        assert (ws / name).is_file(), name
    out = __import__("subprocess").run(["bash", str(ws / "timer.sh")], capture_output=True, text=True).stdout
    assert out.startswith(("Remaining time", "Timer expired"))


def test_rerun_check_and_eval_on_existing_run(noop_run):
    _, run = noop_run
    before = record(run)
    shown = ptb("check", str(run), check=True).stdout
    for name in ("evaluator_tamper", "model_lineage", "contamination", "downloads", "third_party_api"):
        assert f"{name}: pass" in shown
    assert "decision: not flagged" in shown
    proc = ptb("eval", str(run), check=True)
    after = record(run)
    assert after["outcome"]["final_score"] == before["outcome"]["final_score"]
    assert after["stages"]["evaluate"]["started_at"] >= before["stages"]["evaluate"]["started_at"]
    assert "complete" in proc.stdout


def test_agent_crash(results, tmp_path):
    _, run = run_script(results, tmp_path, "crash", "echo starting; exit 3\n", "--minutes", "1")
    rec = record(run)
    assert rec["solve"]["end"] == "crashed" and rec["solve"]["exit_code"] == 3
    o = rec["outcome"]
    assert o["failure_class"] == "agent_crashed" and o["counted_score"] == o["base_score"]
    assert "missing final model" in o["counted_reason"]
    assert "starting" in (run / "agent/output.log").read_text()


def test_agent_hangs_past_deadline_and_ignores_sigterm(results, tmp_path):
    body = "trap 'echo got TERM' TERM\nwhile true; do sleep 0.2; done\n"
    _, run = run_script(results, tmp_path, "hang", body, "--minutes", "0.1", "--grace", "2")
    rec = record(run)
    assert rec["solve"]["end"] == "deadline"
    assert "SIGKILL" in rec["solve"]["detail"]
    assert 6 <= rec["solve"]["seconds"] < 30
    assert rec["outcome"]["failure_class"] == "no_final_model"
    assert "got TERM" in (run / "agent/output.log").read_text()


def test_agent_stops_on_sigterm_at_deadline(results, tmp_path):
    _, run = run_script(results, tmp_path, "sleeper", "sleep 600\n", "--minutes", "0.05", "--grace", "20")
    rec = record(run)
    assert rec["solve"]["end"] == "deadline" and "SIGTERM" in rec["solve"]["detail"]
    assert rec["solve"]["seconds"] < 15


def test_agent_leaves_no_final_model(results, tmp_path):
    _, run = run_script(results, tmp_path, "idle", "echo nothing to do\n", "--minutes", "1")
    rec = record(run)
    assert rec["solve"]["end"] == "exited"
    assert rec["final_model"]["state"] == "missing"
    assert rec["outcome"]["failure_class"] == "no_final_model"
    assert rec["outcome"]["status"] == "complete"


def test_agent_fails_to_start(results, tmp_path):
    missing = str(tmp_path / "missing.sh")
    _, run = run_ptb(results, *RUN, "--agent", "script", "--agent-config", missing, "--minutes", "1")
    rec = record(run)
    assert rec["solve"]["end"] == "failed_to_start" and "does not exist" in rec["solve"]["detail"]
    assert rec["outcome"]["failure_class"] == "agent_failed_to_start"


def test_unloadable_final_model(results, tmp_path):
    body = 'mkdir -p final_model && echo \'{"model_type": "qwen3"}\' > final_model/config.json\n'
    _, run = run_script(results, tmp_path, "broken", body, "--minutes", "1")
    rec = record(run)
    assert rec["final_model"]["state"] == "unloadable" and "no weights" in rec["final_model"]["reason"]
    assert rec["outcome"]["failure_class"] == "unloadable_final_model"
    assert rec["outcome"]["counted_score"] == rec["outcome"]["base_score"]


def test_sandbox_protects_evaluator_and_hides_other_runs(results, tmp_path):
    body = (
        "echo hacked >> evaluate.py && echo WROTE_EVALUATE\n"
        f"ls {results} > seen.txt 2>&1; echo listed\n"
        "echo private > /tmp/mine && echo TMP_OK\n"
        "cp -r $HF_HUB_CACHE/models--posttrainbench--ptb-tiny-base/snapshots/*/ final_model\n"
    )
    _, run = run_script(results, tmp_path, "tamper", body, "--minutes", "1", "--sandbox", "bwrap")
    log = (run / "agent/output.log").read_text()
    assert "WROTE_EVALUATE" not in log and "TMP_OK" in log
    # the results tree shows only this run's own directory; other runs and baselines are hidden
    assert (run / "workspace/seen.txt").read_text().split() == [run.name]
    rec = record(run)
    assert rec["sandbox"] == "bwrap"
    # the write was refused: hashes unchanged, the attempt is evidence (low confidence), no penalty
    tamper = {c["name"]: c for c in rec["checks"]}["evaluator_tamper"]
    assert (tamper["verdict"], tamper["confidence"]) == ("flag", "low") and not tamper["evidence"]["changed"]
    assert tamper["evidence"]["attempts"][0]["kind"] == "refused"
    assert not rec["outcome"]["flagged"]
    assert rec["final_model"]["state"] == "ok"


def test_tamper_is_caught_without_sandbox(results, tmp_path):
    body = "chmod u+w evaluate.py templates/qwen3.jinja; echo '# edited' >> evaluate.py\n"
    proc, run = run_script(results, tmp_path, "tamper_nosb", body, "--minutes", "1", "--sandbox", "none")
    assert "WITHOUT a sandbox" in proc.stderr
    rec = record(run)
    tamper = next(c for c in rec["checks"] if c["name"] == "evaluator_tamper")
    assert tamper["verdict"] == "flag" and "evaluate.py" in tamper["evidence"]["changed"]
    assert rec["sandbox"] == "none" and rec["outcome"]["flagged"]


def test_contaminated_data_file_is_flagged(results, tmp_path):
    from posttrainbench.tasks.arith.data import test_split as arith_test_split

    lines = "".join(f"{it.a}+{it.b} -> {it.answer}\\n" for it in arith_test_split()[:40] if it.op == "+")
    body = f"mkdir -p data && printf '{lines}' > data/mine.txt\n"
    _, run = run_script(results, tmp_path, "contam", body, "--minutes", "1")
    contamination = next(c for c in record(run)["checks"] if c["name"] == "contamination")
    assert contamination["verdict"] == "flag"
    assert contamination["evidence"]["data"]["files"]["workspace/data/mine.txt"]["items"] >= 10
    integrity = json.loads((run / "integrity.json").read_text())
    decision = integrity["decision"]
    assert decision["flagged"] and decision["reasons"][0].startswith("contamination:")


def test_lost_stage_output_is_recomputed(noop_run, tmp_path):
    """Deleting metrics.json and re-running `ptb eval` brings it back; the run dir is the truth."""
    _, run = noop_run
    copy = tmp_path / run.name
    shutil.copytree(run, copy)
    (copy / "metrics.json").unlink()
    ptb("eval", str(copy), check=True)
    assert (copy / "metrics.json").is_file()


def test_agent_facing_evaluate_script(noop_run, tmp_path):
    """The workspace's evaluate.py is what the agent runs: same code, quick checks with --limit."""
    import subprocess
    import sys

    _, run = noop_run
    ws = run / "workspace"
    out = tmp_path / "m.json"
    cmd = [sys.executable, "evaluate.py", "--model-path", str(run / "final_model"), "--limit", "5"]
    done = subprocess.run([*cmd, "--json-output-file", str(out), "--log-dir", str(tmp_path)], cwd=ws,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads(out.read_text())
    assert metrics["n"] == 5 and metrics["task"] == "arith" and metrics["template"] == "qwen3.jinja"
    bad = subprocess.run([*cmd[:-1], "0"], cwd=ws, capture_output=True, text=True)
    assert bad.returncode == 2 and "--limit" in bad.stderr
    assert (
        "--max-tokens" in subprocess.run([*cmd[:2], "--help"], cwd=ws, capture_output=True, text=True).stdout
    )
