"""Importing the original harness's results tree: newest cluster ids, baselines, judgements, failures
and substitution by the zero-shot score, as the original's aggregation scripts decide them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from posttrainbench.results.legacy import _method_spec, import_legacy

M1 = "claude_claude-opus-4-6_10h_run1"
M2 = "claude_claude-opus-4-6_10h_run2"
CLEAN = {"contamination": "no contamination detected", "disallowed": "only allowed use detected"}


def legacy_run(
    root: Path,
    rel: str,
    acc: float | None = None,
    time: str | None = "09:41:07",
    final_model: bool = True,
    contamination: str | None = CLEAN["contamination"],
    disallowed: str | None = CLEAN["disallowed"],
) -> None:
    d = root / rel
    d.mkdir(parents=True)
    (d / "output.log").write_text("log\n")
    if acc is not None:
        (d / "metrics.json").write_text(json.dumps({"accuracy": acc, "stderr": 0.01}))
    if time is not None:
        (d / "time_taken.txt").write_text(time + "\n")
    if final_model:
        (d / "final_model").mkdir()
        (d / "final_model" / "model.safetensors").write_bytes(b"weights")
        (d / "task").mkdir()
    if contamination is not None:
        (d / "contamination_judgement.txt").write_text(contamination + "\n")
    if disallowed is not None:
        (d / "disallowed_model_judgement.txt").write_text(disallowed + "\n")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "results"
    baseline = {"time": "00:05:00", "final_model": False, "contamination": None, "disallowed": None}
    for rel, acc in [
        ("gsm8k_Qwen_Qwen3-1.7B-Base_100", 0.2),
        ("humaneval_Qwen_Qwen3-1.7B-Base_101", 0.3),
        ("gsm8k_google_gemma-3-4b-pt_102", 0.1),
        ("humaneval_google_gemma-3-4b-pt_103", 0.15),
        ("gsm8k_Qwen_Qwen3-1.7B_104", 0.7),
        ("humaneval_Qwen_Qwen3-1.7B_105", 0.6),
        ("gsm8k_google_gemma-3-4b-it_106", 0.8),
        ("humaneval_google_gemma-3-4b-it_107", 0.5),
        ("gsm8k_meta-llama_Llama-3.2-1B_108", 0.4),
    ]:
        legacy_run(src, f"baseline_zeroshot/{rel}", acc, **baseline)
    legacy_run(src, f"{M1}/gsm8k_Qwen_Qwen3-1.7B-Base_150", 0.9)
    legacy_run(src, f"{M1}/gsm8k_Qwen_Qwen3-1.7B-Base_200", 0.6)
    legacy_run(src, f"{M1}/humaneval_Qwen_Qwen3-1.7B-Base_201", 0.8, contamination="contamination detected")
    legacy_run(src, f"{M1}/gsm8k_google_gemma-3-4b-pt_202", 0.5, disallowed=None)
    legacy_run(src, f"{M1}/humaneval_google_gemma-3-4b-pt_203")
    legacy_run(src, f"{M1}/humaneval_google_gemma_3-4b-pt_204", 0.5)
    (src / M1 / "notes.txt").write_text("not a run\n")
    legacy_run(src, f"{M2}/gsm8k_Qwen_Qwen3-1.7B-Base_300", final_model=False)
    legacy_run(src, f"{M2}/humaneval_Qwen_Qwen3-1.7B-Base_301", time=None, final_model=False)
    legacy_run(src, f"{M2}/humaneval_google_gemma-3-4b-pt_302", 0.4, contamination="maybe")
    legacy_run(src, f"{M2}/gsm8k_Qwen_Qwen3-8B-Base_303", 0.5)
    legacy_run(src, "scratch/gsm8k_Qwen_Qwen3-1.7B-Base_1", 0.5)
    (src / "aggregated_baseline_zeroshot.csv").write_text("model,gsm8k\n")
    return src


def rid(task: str, model: str, agent: str, method: str) -> str:
    return f"{task}__{model}__{agent}__legacy-{method}"


def load(out: Path, run_id: str) -> dict:
    return json.loads((out / run_id / "run.json").read_text())


@pytest.mark.parametrize(
    ("method", "agent", "config", "hours", "gpus", "seed"),
    [
        (M2, "claude-code", "claude-opus-4-6", 10, 1, 2),
        ("codex_non_api_high_gpt-5.3-codex_10h_run1", "codex", "non_api_high_gpt-5.3-codex", 10, 1, 1),
        (
            "claude_non_api_claude-opus-4-6_1m__10h_run1",
            "claude-code",
            "non_api_claude-opus-4-6_1m_",
            10,
            1,
            1,
        ),
        (
            "gemini_models_gemini-3-pro-preview_10h_final_v3",
            "gemini-cli",
            "models_gemini-3-pro-preview|final_v3",
            10,
            1,
            0,
        ),
        (
            "claude_claude-opus-4-6_10h_run1_old_container",
            "claude-code",
            "claude-opus-4-6|old_container",
            10,
            1,
            1,
        ),
        ("opencode_opencode_gemini-3.1-pro_50h_8gpu_run3", "opencode", "opencode_gemini-3.1-pro", 50, 8, 3),
        ("aider_gpt-5_1h", "aider", "gpt-5", 1, 1, 0),
    ],
)
def test_method_names(method: str, agent: str, config: str, hours: int, gpus: int, seed: int) -> None:
    assert _method_spec(method) == {
        "agent": agent,
        "agent_config": config,
        "budget_seconds": hours * 3600,
        "gpus": gpus,
        "seed": seed,
    }


def test_import(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    squatted = out / rid("gsm8k", "Qwen3-1.7B-Base", "claude-code", M2)
    squatted.mkdir(parents=True)
    (squatted / "keep.txt").write_text("mine\n")
    other = out / "gsm8k__Qwen3-1.7B-Base__claude-code__ours"
    other.mkdir()
    (other / "run.json").write_text("{}")

    report = import_legacy(tree, out)
    assert report.skipped == {
        "baseline_zeroshot/gsm8k_meta-llama_Llama-3.2-1B_108": "unknown model 'Llama-3.2-1B' "
        "(neither a base model nor an instruct twin)",
        f"{M1}/gsm8k_Qwen_Qwen3-1.7B-Base_150": "superseded by cluster id 200",
        f"{M1}/humaneval_google_gemma_3-4b-pt_204": "unparseable name (expected <task>_<ORG>_<MODEL>_<CLUSTER_ID>)",
        f"{M2}/gsm8k_Qwen_Qwen3-8B-Base_303": "unknown model 'Qwen3-8B-Base' (not a base model)",
        f"{M2}/gsm8k_Qwen_Qwen3-1.7B-Base_300": f"{squatted} exists and is not an imported run",
        "scratch": "unparseable method name (expected <AGENT>_<CONFIG>_<H>h[_<N>gpu]<EXPERIMENT>)",
    }
    assert sorted(report.imported) == sorted(
        [
            *(
                rid(t, m, a, "baseline_zeroshot")
                for t in ("gsm8k", "humaneval")
                for m in ("Qwen3-1.7B-Base", "gemma-3-4b-pt")
                for a in ("zero-shot", "instruct")
            ),
            rid("gsm8k", "Qwen3-1.7B-Base", "claude-code", M1),
            rid("humaneval", "Qwen3-1.7B-Base", "claude-code", M1),
            rid("gsm8k", "gemma-3-4b-pt", "claude-code", M1),
            rid("humaneval", "gemma-3-4b-pt", "claude-code", M1),
            rid("humaneval", "Qwen3-1.7B-Base", "claude-code", M2),
            rid("humaneval", "gemma-3-4b-pt", "claude-code", M2),
        ]
    )
    assert (squatted / "keep.txt").read_text() == "mine\n" and not (squatted / "run.json").exists()

    clean = load(out, rid("gsm8k", "Qwen3-1.7B-Base", "claude-code", M1))
    assert clean["imported_from"] == f"{M1}/gsm8k_Qwen_Qwen3-1.7B-Base_200"
    assert clean["results_root"] == str(out.resolve())
    assert clean["model_card"]["hub_id"] == "Qwen/Qwen3-1.7B-Base"
    spec = clean["spec"]
    assert (spec["agent"], spec["agent_config"], spec["seed"], spec["gpus"]) == (
        "claude-code",
        "claude-opus-4-6",
        1,
        1,
    )
    assert (spec["budget_seconds"], spec["sandbox"]) == (36000, "none")
    assert clean["outcome"] == {
        "status": "complete",
        "failure_class": None,
        "flagged": False,
        "base_score": 0.2,
        "final_score": 0.6,
        "counted_score": 0.6,
        "counted_reason": "final model score",
        "minutes_used": 581.12,
    }
    assert clean["judges"][0]["judge"] == "legacy:codex"
    assert [v["verdict"] for v in clean["judges"][0]["verdicts"]] == ["pass", "pass"]
    assert sorted(p.name for p in (out / clean["run_id"] / "legacy").iterdir()) == [
        "contamination_judgement.txt",
        "disallowed_model_judgement.txt",
        "metrics.json",
        "time_taken.txt",
    ]
    legacy_src = tree / M1 / "gsm8k_Qwen_Qwen3-1.7B-Base_200"
    for name in ("metrics.json", "time_taken.txt"):
        assert (out / clean["run_id"] / "legacy" / name).read_bytes() == (legacy_src / name).read_bytes()
    assert (
        not (out / clean["run_id"] / "final_model").exists() and not (out / clean["run_id"] / "task").exists()
    )

    contaminated = load(out, rid("humaneval", "Qwen3-1.7B-Base", "claude-code", M1))
    assert contaminated["integrity"]["flagged"] and contaminated["outcome"]["flagged"]
    assert contaminated["integrity"]["reasons"] == ["contamination: contamination detected"]
    assert contaminated["outcome"]["status"] == "complete"
    assert (contaminated["outcome"]["final_score"], contaminated["outcome"]["counted_score"]) == (0.8, 0.3)
    assert contaminated["outcome"]["counted_reason"].startswith(
        "flagged (contamination: contamination detected)"
    )

    missing = load(out, rid("gsm8k", "gemma-3-4b-pt", "claude-code", M1))
    assert missing["integrity"]["flagged"]
    assert missing["integrity"]["reasons"] == [
        "disallowed_model: disallowed_model_judgement.txt missing (the original counts a judge error as the base score)"
    ]
    assert missing["integrity"]["majority"] == {"contamination": "pass", "disallowed_model": "error"}
    assert (missing["outcome"]["final_score"], missing["outcome"]["counted_score"]) == (0.5, 0.1)
    assert not (out / missing["run_id"] / "legacy" / "disallowed_model_judgement.txt").exists()

    garbled = load(out, rid("humaneval", "gemma-3-4b-pt", "claude-code", M2))
    assert garbled["spec"]["seed"] == 2
    assert garbled["integrity"]["reasons"][0].startswith(
        "contamination: contamination_judgement.txt garbled: 'maybe'"
    )
    assert garbled["outcome"]["counted_score"] == 0.15

    for task, model, method, failure, base in [
        ("humaneval", "gemma-3-4b-pt", M1, "evaluation_failed", 0.15),
        ("humaneval", "Qwen3-1.7B-Base", M2, "harness_error", 0.3),
    ]:
        outcome = load(out, rid(task, model, "claude-code", method))["outcome"]
        assert (outcome["status"], outcome["failure_class"]) == ("incomplete", failure)
        assert (outcome["final_score"], outcome["counted_score"], outcome["flagged"]) == (None, base, False)
        assert outcome["counted_reason"] == f"no final evaluation ({failure}): counts as the base model"
    assert (
        load(out, rid("humaneval", "Qwen3-1.7B-Base", "claude-code", M2))["outcome"]["minutes_used"] is None
    )

    zero_shot = load(out, rid("gsm8k", "gemma-3-4b-pt", "zero-shot", "baseline_zeroshot"))
    assert zero_shot["spec"]["agent"] == "zero-shot" and zero_shot["judges"] == []
    assert zero_shot["integrity"] is None and not zero_shot["outcome"]["flagged"]
    assert (zero_shot["outcome"]["final_score"], zero_shot["outcome"]["minutes_used"]) == (0.1, 5.0)
    instruct = load(out, rid("gsm8k", "gemma-3-4b-pt", "instruct", "baseline_zeroshot"))
    assert instruct["imported_from"] == "baseline_zeroshot/gsm8k_google_gemma-3-4b-it_106"
    assert instruct["model_card"]["instruct_twin"] == "google/gemma-3-4b-it"
    assert (instruct["outcome"]["base_score"], instruct["outcome"]["counted_score"]) == (0.1, 0.8)

    before = {rid_: load(out, rid_) for rid_ in report.imported}
    again = import_legacy(tree, out)
    assert again == report
    assert {rid_: load(out, rid_) for rid_ in again.imported} == before
    assert (other / "run.json").read_text() == "{}"


def test_no_baseline(tmp_path: Path) -> None:
    """Without a baseline dir there is no base score: a failed run counts as nothing."""
    legacy_run(tmp_path / "src", f"{M1}/gsm8k_Qwen_Qwen3-1.7B-Base_1", final_model=False)
    report = import_legacy(tmp_path / "src", tmp_path / "out")
    outcome = load(tmp_path / "out", report.imported[0])["outcome"]
    assert (outcome["failure_class"], outcome["base_score"], outcome["counted_score"]) == (
        "no_final_model",
        None,
        None,
    )
