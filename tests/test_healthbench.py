"""HealthBench: the real data file, the rubric grader end to end through inspect with a scripted
mockllm grader, failed gradings counted and excluded, and a comparison with inspect_evals' own scorer.

HealthBench contents are never printed or asserted on: only counts, ids, points and scores."""

from __future__ import annotations

import math
import random
import re
from collections import Counter

import inspect_ai
import numpy as np
import pytest
from inspect_ai import Task as InspectTask
from inspect_ai.dataset import MemoryDataset
from inspect_ai.model import ModelOutput, ModelUsage, get_model
from inspect_ai.solver import generate
from inspect_evals.healthbench.scorer import GRADER_TEMPLATE, healthbench_scorer

from conftest import SHARED_DATA
from posttrainbench.tasks.base import EvalOptions
from posttrainbench.tasks.healthbench import grader
from posttrainbench.tasks.healthbench.task import DATA_FILE, HealthBenchTask, load_records

TASK = HealthBenchTask()
RUBRIC_ITEM = re.compile(r"# Rubric item\n(.*?)\n\n# Instructions", re.DOTALL)
MARKER = re.compile(r"RESP-(\d+)")


@pytest.fixture(scope="module")
def data():
    return TASK.data(SHARED_DATA)


@pytest.fixture(scope="module")
def samples(data):
    return TASK.samples(data)


def test_data_file_all_records(data):
    records = load_records(data.path(DATA_FILE))
    assert len(records) == 245
    assert len({r.prompt_id for r in records}) == 245
    assert sum(len(r.rubrics) for r in records) == 1873
    assert sum(c.points < 0 for r in records for c in r.rubrics) == 391
    themes = Counter(grader.theme_of(r.example_tags) for r in records)
    assert themes == {
        "communication": 75,
        "hedging": 70,
        "global_health": 37,
        "complex_responses": 23,
        "context_seeking": 22,
        "emergency_referrals": 13,
        "health_data_tasks": 5,
    }
    assert all(r.prompt[-1].role == "user" for r in records)
    assert all(any(c.points > 0 for c in r.rubrics) for r in records)


def test_samples_are_the_originals_shuffled_order(data, samples):
    file_order = [r.prompt_id for r in load_records(data.path(DATA_FILE))]
    random.Random(42).shuffle(file_order)
    assert [s.id for s in samples] == file_order
    assert [s.id for s in samples] != sorted(s.id for s in samples)
    first = samples[0]
    assert isinstance(first.input, list) and first.input[-1].role == "user"
    assert {"rubrics", "conversation", "example_tags"} <= set(first.metadata)


def test_task_info():
    info = TASK.info
    assert (info.default_limit, info.default_max_tokens, info.retry_max_tokens) == (32, 16384, (12288, 8192))
    assert info.token_flag == "--max-new-tokens" and info.default_judge == "openai/gpt-5-mini"
    assert TASK.benchmark == "HealthBench"


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        (
            '```json\n{"explanation": "e", "criteria_met": true}\n```',
            {"explanation": "e", "criteria_met": True},
        ),
        ('```\n{"criteria_met": false}\n```', {"criteria_met": False}),
        ('  {"criteria_met": false}  ', {"criteria_met": False}),
        ("The criterion is met.", {}),
        ("[true]", {}),
    ],
)
def test_parse_grader_json(text, parsed):
    assert grader.parse_grader_json(text) == parsed


def _output(text: str) -> ModelOutput:
    out = ModelOutput.from_content(model="mockllm/model", content=text)
    out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
    return out


def _verdict(k: int, i: int) -> bool:
    """The scripted grader's answer for criterion i of example k."""
    return (i + k) % 3 != 0


class ScriptedGrader:
    """Grades by (example, criterion) read from the prompt. `raising` criteria fail every call,
    `malformed` ones always answer without JSON, `flaky` ones answer badly twice, then properly."""

    def __init__(self, samples, raising=(), malformed=(), flaky=()):
        self.items = [
            {f"[{r['points']}] {r['criterion']}": i for i, r in enumerate(s.metadata["rubrics"])}
            for s in samples
        ]
        self.raising, self.malformed, self.flaky = set(raising), set(malformed), set(flaky)
        self.calls: Counter[tuple[int, int]] = Counter()
        self.prompts: list[str] = []
        self.roles: list[list[str]] = []

    def __call__(self, input, tools, tool_choice, config):
        prompt = input[-1].text
        self.prompts.append(prompt)
        self.roles.append([m.role for m in input])
        k = int(MARKER.search(prompt).group(1))
        i = self.items[k].get(RUBRIC_ITEM.search(prompt).group(1))
        assert i is not None, f"example {k}: rubric item not found in the grader prompt"  # text not shown
        self.calls[k, i] += 1
        if (k, i) in self.raising:
            raise RuntimeError("grader API unavailable")
        if (k, i) in self.malformed or ((k, i) in self.flaky and self.calls[k, i] <= 2):
            return _output("I think the criterion is met.")
        met = "true" if _verdict(k, i) else "false"
        return _output(f'```json\n{{"explanation": "scripted", "criteria_met": {met}}}\n```')


def _responses(samples) -> dict[str, str]:
    """Last user turn -> the evaluated model's answer for that example (with a think block and a loop)."""
    out = {}
    for k, s in enumerate(samples):
        out[s.input[-1].text] = f"<think>HIDDEN-{k}</think>RESP-{k} advice.\n" + "Stay safe.\n" * 12
    assert len(out) == len(samples)
    return out


def _eval(task: InspectTask, samples, tmp_path):
    answers = _responses(samples)

    def model(input, tools, tool_choice, config):
        answer = answers.get(input[-1].text)
        assert answer is not None, "unexpected conversation"  # its text is not shown
        return _output(answer)

    log = inspect_ai.eval(
        task,
        model=get_model("mockllm/model", custom_outputs=model),
        limit=len(samples),
        display="none",
        log_dir=str(tmp_path / "logs"),
    )[0]
    assert log.status == "success", log.error
    return log


def _expected(rubrics, k: int, excluded=()) -> float:
    """Σ points met / Σ positive points over the criteria not excluded (computed independently)."""
    achieved = possible = 0
    for i, r in enumerate(rubrics):
        if i in excluded:
            continue
        possible += max(r["points"], 0)
        achieved += r["points"] if _verdict(k, i) else 0
    return achieved / possible


def _met_positive(sample, k: int) -> int:
    """A positive criterion of example k that the scripted grader would mark as met."""
    return next(i for i, r in enumerate(sample.metadata["rubrics"]) if r["points"] > 0 and _verdict(k, i))


def test_rubric_scores_failures_excluded_and_counted(data, samples, tmp_path):
    chosen = samples[:6]
    raising = (0, _met_positive(chosen[0], 0))
    malformed = (1, _met_positive(chosen[1], 1))
    flaky = (2, 0)
    scripted = ScriptedGrader(chosen, raising=[raising], malformed=[malformed], flaky=[flaky])
    task = TASK.inspect_task(data, EvalOptions(judge=get_model("mockllm/model", custom_outputs=scripted)))
    log = _eval(task, chosen, tmp_path)
    metrics = {k: v.value for k, v in log.results.scores[0].metrics.items()}

    rubrics = [s.metadata["rubrics"] for s in chosen]
    n_criteria = sum(len(r) for r in rubrics)
    expected = [
        _expected(rubrics[k], k, excluded={raising[1]} if k == 0 else {malformed[1]} if k == 1 else ())
        for k in range(len(chosen))
    ]
    assert metrics["judge_calls"] == n_criteria
    assert metrics["judge_failures"] == 2
    assert metrics["n_examples"] == 6 and metrics["unscored_examples"] == 0
    assert metrics["accuracy"] == pytest.approx(float(np.clip(np.mean(expected), 0, 1)))
    rng = np.random.default_rng(42)
    boot = [np.clip(np.mean(rng.choice(expected, len(expected))), 0, 1) for _ in range(1000)]
    assert metrics["stderr"] == pytest.approx(float(np.std(boot)))

    # Each failed criterion was asked 5 times; the flaky one succeeded on its third call.
    assert scripted.calls[raising] == 5
    assert scripted.calls[malformed] == 5
    assert scripted.calls[flaky] == 3
    assert sum(scripted.calls.values()) == n_criteria + 2 * 4 + 2
    # The grader saw the cleaned answer, in OpenAI's grader template, as one user message.
    assert all(p.startswith(GRADER_TEMPLATE.split("<<conversation>>")[0]) for p in scripted.prompts)
    assert all(roles == ["user"] for roles in scripted.roles)
    assert not any("HIDDEN-" in p or "<think>" in p for p in scripted.prompts)
    assert all(p.count("Stay safe.") == 5 for p in scripted.prompts)

    by_id = {s.id: s.scores["rubric_grader"] for s in log.samples}
    for k, s in enumerate(chosen):
        assert by_id[s.id].value["score"] == pytest.approx(expected[k])
    grades0 = by_id[chosen[0].id].metadata["grades"]
    assert grades0[raising[1]]["met"] is None
    assert grades0[raising[1]]["error"].startswith("grader call failed: RuntimeError")
    grades1 = by_id[chosen[1].id].metadata["grades"]
    assert grades1[malformed[1]]["error"] == "grader answer has no boolean criteria_met"

    # Breakdowns: theme means and axis point ratios over the graded criteria.
    themes: dict[str, list[float]] = {}
    axes: dict[str, list[float]] = {}
    for k, s in enumerate(chosen):
        themes.setdefault(grader.theme_of(s.metadata["example_tags"]), []).append(expected[k])
        for i, r in enumerate(s.metadata["rubrics"]):
            if (k, i) in (raising, malformed):
                continue
            acc = axes.setdefault(grader.axis_of(r["tags"]), [0, 0])
            acc[0] += r["points"] if _verdict(k, i) else 0
            acc[1] += max(r["points"], 0)
    for theme, values in themes.items():
        assert metrics[f"by_theme/{theme}"] == pytest.approx(float(np.clip(np.mean(values), 0, 1)))
    for axis, (achieved, possible) in axes.items():
        if possible == 0:  # an axis with only negative criteria here has no score, as in the original
            assert f"by_axis/{axis}" not in metrics
        else:
            assert metrics[f"by_axis/{axis}"] == pytest.approx(float(np.clip(achieved / possible, 0, 1)))
    assert {k for k in metrics if k.startswith("by_axis/")} == {
        f"by_axis/{a}" for a, (_, possible) in axes.items() if possible
    }


def test_example_without_gradable_positive_criteria_is_unscored(data, samples, tmp_path):
    chosen = samples[:2]
    positives = [(0, i) for i, r in enumerate(chosen[0].metadata["rubrics"]) if r["points"] > 0]
    scripted = ScriptedGrader(chosen, raising=positives)
    task = TASK.inspect_task(data, EvalOptions(judge=get_model("mockllm/model", custom_outputs=scripted)))
    metrics = {k: v.value for k, v in _eval(task, chosen, tmp_path).results.scores[0].metrics.items()}
    assert metrics["n_examples"] == 1 and metrics["unscored_examples"] == 1
    assert metrics["judge_failures"] == len(positives)
    assert metrics["accuracy"] == pytest.approx(
        float(np.clip(_expected(chosen[1].metadata["rubrics"], 1), 0, 1))
    )


def test_matches_inspect_evals_scorer_except_on_failures(data, samples, tmp_path, monkeypatch):
    """Same outputs, same grader answers: inspect_evals' per-example scores equal ours where every
    criterion was graded; on a failed grader call inspect_evals scores the criterion as not met."""
    monkeypatch.setenv("INSPECT_CACHE_DIR", str(tmp_path / "cache"))  # it grades with cache=True
    chosen = samples[:4]
    failing = (0, _met_positive(chosen[0], 0))
    ours_grader = ScriptedGrader(chosen, raising=[failing])
    theirs_grader = ScriptedGrader(chosen, raising=[failing])
    ours = _eval(
        TASK.inspect_task(data, EvalOptions(judge=get_model("mockllm/model", custom_outputs=ours_grader))),
        chosen,
        tmp_path,
    )
    reference = InspectTask(
        dataset=MemoryDataset(chosen),
        solver=generate(),
        scorer=healthbench_scorer(judge_model=get_model("mockllm/model", custom_outputs=theirs_grader)),
    )
    theirs = _eval(reference, chosen, tmp_path)
    ours_by_id = {s.id: s.scores["rubric_grader"].value["score"] for s in ours.samples}
    theirs_by_id = {s.id: next(iter(s.scores.values())).value["healthbench_score"] for s in theirs.samples}
    # inspect_evals strips nothing: its grader saw the think block and the loop; ours did not.
    assert any("HIDDEN-" in p for p in theirs_grader.prompts)
    for k, s in enumerate(chosen[1:], start=1):
        assert ours_by_id[s.id] == pytest.approx(theirs_by_id[s.id])
        assert ours_by_id[s.id] == pytest.approx(_expected(s.metadata["rubrics"], k))
    rubrics0 = chosen[0].metadata["rubrics"]
    ours0, theirs0 = ours_by_id[chosen[0].id], theirs_by_id[chosen[0].id]
    assert ours0 == pytest.approx(_expected(rubrics0, 0, excluded={failing[1]}))
    points = rubrics0[failing[1]]["points"]
    possible = sum(max(r["points"], 0) for r in rubrics0)
    assert theirs0 == pytest.approx(_expected(rubrics0, 0) - points / possible)  # counted as not met
    assert not math.isclose(ours0, theirs0)
