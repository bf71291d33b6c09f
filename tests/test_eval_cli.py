"""`ptb eval` end to end: ptb-tiny on every benchmark with the hf backend on CPU, the judged tasks
against a scripted OpenAI-compatible judge server, and the evaluation contract in metrics.json
(template from config.json, greedy decoding whatever generation_config.json says, seeded epochs)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from inspect_ai.log import read_eval_log

from conftest import SHARED_DATA, ptb
from judge_server import ScriptedJudge
from posttrainbench import models, settings, tasks
from posttrainbench.data import read_jsonl

BENCHMARKS = ("aime2025", "arenahardwriting", "bfcl", "gpqamain", "gsm8k", "healthbench", "humaneval")
JUDGE = "openai-api/judge/scripted-judge"


@pytest.fixture(autouse=True)
def _data(ptb_home, monkeypatch):
    if not SHARED_DATA.is_dir():
        pytest.skip(f"no benchmark data at {SHARED_DATA}")
    monkeypatch.setenv("PTB_DATA_DIR", str(SHARED_DATA))


def _kind(messages: list[dict]) -> str:
    text = " ".join(str(m.get("content")) for m in messages)
    return "healthbench" if "criteria_met" in text else "arena"


def _judge_env(judge: ScriptedJudge, monkeypatch) -> None:
    monkeypatch.setenv("JUDGE_BASE_URL", judge.url)
    monkeypatch.setenv("JUDGE_API_KEY", "test-key")


def _metrics(out: Path, task: str) -> dict:
    return json.loads((out / task / "metrics.json").read_text())


def _completions(log_file: str) -> list[str]:
    log = read_eval_log(log_file)
    assert log.samples is not None
    return [s.output.completion for s in log.samples]


def test_every_benchmark_with_limit_3_on_cpu(tmp_path, monkeypatch):
    def reply(messages: list[dict]) -> str:
        if _kind(messages) == "healthbench":
            return '```json\n{"explanation": "covered", "criteria_met": true}\n```'
        return "Both answers are equally weak. My final verdict is tie: [[A=B]]"

    out = tmp_path / "eval"
    with ScriptedJudge(reply) as judge:
        _judge_env(judge, monkeypatch)
        proc = ptb(
            "eval", "ptb-tiny", "--tasks", "all", "--limit", "3", "--max-tokens", "16",
            "--backend", "hf", "--judge-model", JUDGE, "--out", str(out),
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    for task in BENCHMARKS:
        m = _metrics(out, task)
        assert m["task"] == task and m["n"] == 3 and 0.0 <= m["score"] <= 1.0, m
        assert m["backend"] == "hf" and m["template"] == "qwen3.jinja"
        assert m["decoding"] == {"temperature": 0.0, "do_sample": False, "max_tokens": 16, "seed": 0}
        assert m["data"]["source"] == "local" and m["data"]["location"] == str(
            SHARED_DATA / tasks.get(task).data_folder
        )
        assert all(len(f["sha256"]) == 64 for f in m["data"]["files"])
        assert m["epochs"] == 1 and m["generation_config"]["applied"] is False
        assert Path(m["log_files"][0]).is_file()
        assert task in proc.stdout
    kinds = [_kind(r) for r in judge.requests]
    arena, health = _metrics(out, "arenahardwriting"), _metrics(out, "healthbench")
    # Two games per question, every verdict a tie: exactly half.
    assert arena["judge_model"] == JUDGE and arena["judge_calls"] == 6 == kinds.count("arena")
    assert arena["judge_failures"] == 0 and arena["score"] == 0.5
    assert health["judge_model"] == JUDGE and health["judge_failures"] == 0
    assert health["judge_calls"] == kinds.count("healthbench") > 3
    # HumanEval ran the (useless) completions through the sandbox: every sample has a verdict.
    log = read_eval_log(_metrics(out, "humaneval")["log_files"][0])
    assert log.samples and all(s.scores and s.scores["verify"].value in ("C", "I") for s in log.samples)
    assert _metrics(out, "gsm8k")["judge_model"] is None


def test_all_judge_calls_failing_fails_the_evaluation(tmp_path, monkeypatch):
    with ScriptedJudge(lambda messages: "I would rather not say.") as judge:
        _judge_env(judge, monkeypatch)
        proc = ptb(
            "eval", "ptb-tiny", "--tasks", "arenahardwriting", "--limit", "1", "--max-tokens", "8",
            "--backend", "hf", "--judge-model", JUDGE, "--out", str(tmp_path / "eval"),
        )  # fmt: skip
    assert proc.returncode == 2
    assert "all 2 calls to the judge" in proc.stderr and JUDGE in proc.stderr
    assert not (tmp_path / "eval" / "arenahardwriting" / "metrics.json").exists()


def test_generation_config_is_recorded_not_applied_and_epochs_are_seeds(tmp_path):
    plain = models.snapshot(models.get("ptb-tiny"), settings.model_cache())
    sampled = tmp_path / "submission"
    shutil.copytree(plain, sampled)
    config = {
        "do_sample": True,
        "temperature": 1.8,
        "top_k": 3,
        "repetition_penalty": 3.0,
        "max_new_tokens": 2,
    }
    (sampled / "generation_config.json").write_text(json.dumps(config))

    base_out, sub_out = tmp_path / "base", tmp_path / "sub"
    args = ("--limit", "2", "--max-tokens", "12", "--backend", "hf")
    ptb("eval", str(plain), "--tasks", "gsm8k", *args, "--out", str(base_out), check=True)
    ptb(
        "eval",
        str(sampled),
        "--tasks",
        "gsm8k,gpqamain",
        "--epochs",
        "2",
        *args,
        "--out",
        str(sub_out),
        check=True,
    )

    base, sub = _metrics(base_out, "gsm8k"), _metrics(sub_out, "gsm8k")
    digest = hashlib.sha256((sampled / "generation_config.json").read_bytes()).hexdigest()
    assert sub["generation_config"] == {"present": True, "sha256": digest, "applied": False}
    # Greedy whatever the submission asks for: same completions as the plain model, in both epochs.
    expected = _completions(base["log_files"][0])
    assert [_completions(f) for f in sub["log_files"]] == [expected, expected]
    assert sub["epochs"] == 2 and len(sub["epoch_scores"]) == 2 and sub["stderr"] == 0.0

    gpqa = _metrics(sub_out, "gpqamain")
    assert gpqa["epochs"] == 2 and len(gpqa["log_files"]) == 2
    orders = [[s.choices for s in read_eval_log(f).samples or []] for f in gpqa["log_files"]]
    assert orders[0] != orders[1], "each epoch's seed shuffles GPQA's choices differently"


def test_eval_explains_bad_targets_and_tasks(tmp_path):
    proc = ptb("eval", str(tmp_path), "--tasks", "gsm8k")
    assert proc.returncode == 2 and "not a run directory, a model directory" in proc.stderr
    proc = ptb("eval", "ptb-tiny", "--tasks", "gsm8k,nonsense")
    assert proc.returncode == 2 and "nonsense" in proc.stderr and "humaneval" in proc.stderr
    proc = ptb("eval", "ptb-tiny")
    assert proc.returncode == 2 and "--tasks" in proc.stderr


def _between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0] if start in text else ""


def test_score_arenahard_outputs_calls_the_judge(tmp_path, monkeypatch):
    """The judge prefers an answer carrying the marker, else the longer one (the baseline's), wherever
    the game puts it."""

    def reply(messages: list[dict]) -> str:
        text = " ".join(str(m.get("content")) for m in messages)
        a = _between(text, "<|The Start of Assistant A's Answer|>", "<|The End of Assistant A")
        b = _between(text, "<|The Start of Assistant B's Answer|>", "<|The End of Assistant B")
        a_wins = "MARKER" in a or ("MARKER" not in b and len(a) > len(b))
        return "My final verdict is: [[A>>B]]" if a_wins else "My final verdict is: [[B>>A]]"

    task = tasks.get("arenahardwriting")
    ids = [str(s.id) for s in task.samples(task.data(SHARED_DATA))[:2]]
    outputs = tmp_path / "outputs.jsonl"
    outputs.write_text(
        json.dumps({"id": ids[0], "output": "<think>plan</think>A poem. MARKER"})
        + "\n"
        + json.dumps({"index": 1, "output": "A plain poem."})
        + "\n"
    )
    with ScriptedJudge(reply) as judge:
        _judge_env(judge, monkeypatch)
        ptb("score", "--task", "arenahardwriting", "--outputs", str(outputs), "--judge-model", JUDGE,
            "--out", str(tmp_path / "m"), check=True)  # fmt: skip
    m = json.loads((tmp_path / "m" / "metrics.json").read_text())
    # First answer wins both games (>> weighs 3), the second loses both.
    assert m["score"] == 0.5 and m["n"] == 2 and m["judge_calls"] == 4 == len(judge.requests)
    assert m["judge_failures"] == 0 and m["backend"] == "replay"
    assert all("<think>" not in str(r) for r in judge.requests), "the think block is stripped before judging"


def test_score_humaneval_outputs_runs_them_in_the_sandbox(tmp_path):
    problems = read_jsonl(SHARED_DATA / "humaneval" / "HumanEval.jsonl.gz")[:3]
    outputs = tmp_path / "outputs.jsonl"
    rows = [
        # A whole function in a fence (what chat models write), and a bare body (what base models write).
        {
            "id": problems[0]["task_id"],
            "output": "```python\n" + problems[0]["prompt"] + problems[0]["canonical_solution"] + "```",
        },
        {"id": problems[1]["task_id"], "output": problems[1]["canonical_solution"]},
        {"id": problems[2]["task_id"], "output": "    return None\n"},
    ]
    outputs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ptb("score", "--task", "humaneval", "--outputs", str(outputs), "--out", str(tmp_path / "m"), check=True)
    m = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert m["n"] == 3 and abs(m["score"] - 2 / 3) < 1e-9
