"""The inspect_evals-based benchmarks on the real data files: every record loads, and hand-written
outputs in the formats models produce are scored right, through `ptb score`'s replay (the task's own
solver chain and scorer run unchanged). GPQA content is never printed: assertions use ids and scores."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from inspect_ai.log import read_eval_log
from inspect_ai.scorer import value_to_float

from conftest import SHARED_DATA, ptb
from posttrainbench import tasks
from posttrainbench.data import read_jsonl
from posttrainbench.evaluation.replay import score_outputs
from posttrainbench.evaluation.runner import RunOptions
from posttrainbench.tasks.base import EvalOptions


@pytest.fixture(autouse=True)
def local_data(monkeypatch, ptb_home):
    monkeypatch.setenv("PTB_DATA_DIR", str(SHARED_DATA))


def samples(name: str, seed: int = 0):
    task = tasks.get(name)
    return list(task.inspect_task(task.data(), EvalOptions(seed=seed)).dataset)


def replay(name: str, lines: list[dict], tmp_path: Path, seed: int = 0) -> dict[str, float]:
    """Score saved outputs; returns sample id -> score value (1.0 correct, 0.0 incorrect)."""
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    metrics = score_outputs(name, path, RunOptions(log_dir=tmp_path / "logs", display="none", seed=seed))
    log = read_eval_log(metrics.log_files[0])
    to_float = value_to_float()
    values = {str(s.id): to_float(next(iter(s.scores.values())).value) for s in log.samples}
    assert metrics.n == len(lines) and metrics.score == pytest.approx(sum(values.values()) / len(values))
    assert metrics.backend == "replay" and metrics.data.source == "local"
    return values


@pytest.mark.parametrize(
    ("name", "count"), [("gsm8k", 1319), ("aime2025", 30), ("gpqamain", 448), ("bfcl", 100)]
)
def test_all_records_load(name, count):
    loaded = samples(name)
    assert len(loaded) == count
    assert len({s.id for s in loaded}) == count


def test_gsm8k_scores_answers_as_models_write_them(tmp_path):
    test = read_jsonl(SHARED_DATA / "gsm8k" / "test.jsonl")
    answers = [r["answer"].split("####")[-1].strip() for r in test[:6]]
    outputs = [
        f"Reasoning: step one, step two.\nANSWER: {answers[0]}",
        f"So the total is {answers[1]}.\n\nANSWER: ${answers[1]}",  # dollar sign, as models write money
        f"ANSWER: {int(answers[2]):,}",  # thousands separator
        f"ANSWER: {int(answers[3]) + 1}",  # wrong
        "I am not sure how to solve this.",  # malformed: no number at all
        f"ANSWER: {answers[5]}\nWait, let me redo that. ANSWER: {int(answers[5]) + 7}",  # last answer wins
    ]
    ids = [str(s.id) for s in samples("gsm8k")[:6]]
    scored = replay("gsm8k", [{"index": i, "output": o} for i, o in enumerate(outputs)], tmp_path)
    assert [scored[i] for i in ids] == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]


def test_gsm8k_prompt_is_ten_shot_from_the_train_split(tmp_path):
    """What the model is sent: ten worked train examples as the system message, then the question
    in inspect_evals' template."""
    import inspect_ai
    from inspect_ai.model import ModelOutput, ModelUsage, get_model

    seen = []

    def answer(input, tools, tool_choice, config):
        seen.append(input)
        out = ModelOutput.from_content("mock", "ANSWER: 0")
        out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return out

    task = tasks.get("gsm8k")
    log = inspect_ai.eval(
        task.inspect_task(task.data(), EvalOptions()),
        model=get_model("mockllm/model", custom_outputs=answer),
        limit=1,
        display="none",
        log_dir=str(tmp_path),
    )[0]
    assert log.status == "success"
    [messages] = seen
    system, user = messages[0].text, messages[-1].text
    train_questions = {r["question"] for r in read_jsonl(SHARED_DATA / "gsm8k" / "train.jsonl")}
    shots = system.split("\n\n")
    assert system.count("ANSWER: ") == 10
    assert sum(1 for q in train_questions if q in system) == 10
    assert read_jsonl(SHARED_DATA / "gsm8k" / "test.jsonl")[0]["question"] in user
    assert user.startswith("Solve the following math problem step by step.") and shots
    # The same ten as inspect_evals' hub loader picks (`datasets` shuffle with the few-shot seed).
    import datasets
    from inspect_evals.constants import DEFAULT_FEWSHOT_SEED

    train = read_jsonl(SHARED_DATA / "gsm8k" / "train.jsonl")
    hub_order = datasets.Dataset.from_list(train).shuffle(seed=DEFAULT_FEWSHOT_SEED)
    assert all(r["question"] in system for r in hub_order.select(range(10)))


def test_gsm8k_training_examples_are_the_train_split_in_the_evaluation_format(tmp_path):
    examples = tasks.get("gsm8k").training_examples(tmp_path)
    train = read_jsonl(SHARED_DATA / "gsm8k" / "train.jsonl")
    assert len(examples) == len(train) == 7473
    test_questions = {r["question"] for r in read_jsonl(SHARED_DATA / "gsm8k" / "test.jsonl")}
    for example, record in zip(examples, train, strict=True):
        [prompt], [completion] = example["prompt"], example["completion"]
        assert record["question"] in prompt["content"] and record["question"] not in test_questions
        assert prompt["content"].startswith("Solve the following math problem step by step.")
        assert "<<" not in completion["content"]
        assert completion["content"].endswith("\nANSWER: " + record["answer"].split("####")[-1].strip())


def test_aime_scores_boxed_and_plain_answers(tmp_path):
    test = read_jsonl(SHARED_DATA / "aime2025" / "test.jsonl")
    a = [r["answer"] for r in test[:5]]
    outputs = [
        f"Working...\nANSWER: {a[0]}",
        f"Therefore the answer is\n$$\n\\boxed{{{a[1]}}}\n$$",
        f"ANSWER: {int(a[2]) + 1}",
        "",
        f"ANSWER: {a[4]}.",
    ]
    scored = replay("aime2025", [{"id": str(i), "output": o} for i, o in enumerate(outputs)], tmp_path)
    assert scored == {"0": 1.0, "1": 1.0, "2": 0.0, "3": 0.0, "4": 1.0}


def test_gpqa_choice_order_is_seeded_and_letters_are_scored(tmp_path):
    first = samples("gpqamain", seed=0)
    assert [s.target for s in first] == [s.target for s in samples("gpqamain", seed=0)]
    assert [s.target for s in first] != [s.target for s in samples("gpqamain", seed=1)]
    assert {s.target for s in first} == set("ABCD")  # the correct answer is not always A
    letters = [s.target for s in first[:4]]
    wrong = [next(c for c in "ABCD" if c != t) for t in letters]
    outputs = [
        {"index": 0, "output": f"Let me think step by step.\n\nANSWER: {letters[0]}"},
        {"index": 1, "output": f"ANSWER: {wrong[1]}"},
        {"index": 2, "output": "The answer is the second option, I believe."},
        {"index": 3, "output": f"ANSWER:{letters[3]}"},
    ]
    scored = replay("gpqamain", outputs, tmp_path)
    assert [scored[str(s.id)] for s in first[:4]] == [1.0, 0.0, 0.0, 1.0]
    # Under another seed the same letters point at other choices.
    reshuffled = replay("gpqamain", outputs[:1], tmp_path, seed=1)
    assert reshuffled[str(first[0].id)] == (
        1.0 if samples("gpqamain", seed=1)[0].target == letters[0] else 0.0
    )


def _ground_truth_calls(sample) -> list[dict]:
    return [
        {"name": name, "arguments": {k: v[0] for k, v in params.items()}}
        for call in sample.metadata["parsed_ground_truth"]
        for name, params in call.items()
    ]


def test_bfcl_possible_answers_score_one(tmp_path):
    all_samples = samples("bfcl")
    lines = [{"id": s.id, "tool_calls": _ground_truth_calls(s)} for s in all_samples]
    scored = replay("bfcl", lines, tmp_path)
    assert len(scored) == 100 and set(scored.values()) == {1.0}


def test_bfcl_wrong_and_malformed_calls_fail(tmp_path):
    s0, s1, s2 = samples("bfcl")[:3]
    wrong_args = _ground_truth_calls(s1)
    key = next(iter(wrong_args[0]["arguments"]))
    wrong_args[0]["arguments"][key] = "not the right value"
    lines = [
        {"id": s0.id, "tool_calls": _ground_truth_calls(s0)},
        {"id": s1.id, "tool_calls": wrong_args},
        {"id": s2.id, "output": f"I would call {_ground_truth_calls(s2)[0]['name']} here."},  # text, no call
    ]
    assert replay("bfcl", lines, tmp_path) == {s0.id: 1.0, s1.id: 0.0, s2.id: 0.0}


def test_score_cli_rejects_bad_outputs_files(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"index": 0}\n')
    proc = ptb("score", "--task", "gsm8k", "--outputs", str(bad))
    assert proc.returncode == 2 and "give `output`" in proc.stderr
    bad.write_text('{"index": 99999, "output": "1"}\n')
    proc = ptb("score", "--task", "gsm8k", "--outputs", str(bad))
    assert proc.returncode == 2 and "outside the test set" in proc.stderr


def test_score_cli_writes_metrics(tmp_path):
    test = read_jsonl(SHARED_DATA / "gsm8k" / "test.jsonl")
    outputs = tmp_path / "out.jsonl"
    outputs.write_text(
        "".join(
            json.dumps({"index": i, "output": "ANSWER: " + r["answer"].split("####")[-1].strip()}) + "\n"
            for i, r in enumerate(test[:3])
        )
        + json.dumps({"index": 3, "output": "ANSWER: " + string.ascii_letters[:3]})
        + "\n"
    )
    proc = ptb(
        "score", "--task", "gsm8k", "--outputs", str(outputs), "--out", str(tmp_path / "m"), check=True
    )
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert metrics["score"] == 0.75 and metrics["n"] == 4 and metrics["task"] == "gsm8k"
    assert '"score": 0.75' in proc.stdout


def test_reference_recipe_on_a_cpu_says_when_prompts_fill_its_rows(tmp_path):
    """GSM8K's prompts in the tiny tokenizer's 512-token vocabulary fill the CPU rows: TRL would drop every
    example and fail on an empty dataset."""
    import time

    import torch

    from posttrainbench import models, settings
    from posttrainbench.agents.builtin.sft import finetune

    if torch.cuda.is_available():
        pytest.skip("the CPU rows only")
    base = models.snapshot(models.get("ptb-tiny"), settings.model_cache())
    examples = tasks.get("gsm8k").training_examples(tmp_path)[:8]
    with pytest.raises(SystemExit, match="longer than the 256 tokens a training row holds on a CPU"):
        finetune(str(base), examples, tmp_path / "final_model", time.time() + 60)
