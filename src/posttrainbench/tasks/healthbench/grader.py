"""HealthBench rubric grading: one grader call per rubric criterion, scored as the original PostTrainBench.

Reused from inspect_evals (0.26.0, `inspect_evals.healthbench`): `record_to_sample` (in task.py) and
`GRADER_TEMPLATE`, OpenAI's simple-evals grader prompt, verbatim, as the original uses it. The conversation
is rendered as `role: content` blocks and the rubric item as `[points] criterion`, as in both. The grader's
JSON answer is parsed like inspect_evals' `parse_json_to_dict` (strip a ```json or bare ``` fence, then
`json.loads`), but without its warning, which logs the whole grader answer (it can quote the conversation,
and HealthBench content must stay out of logs).

Not reused: inspect_evals' `_evaluate_criterion`. After its retries it records a grader call that raised,
and an answer without a boolean `criteria_met`, as "criterion not met" (the original PostTrainBench does
the same). That silently lowers the score on positive criteria and raises it on negative ones. Here the
grader is asked up to `GRADER_ATTEMPTS` times, like the original. A criterion still ungraded after that is a
judge failure: `met` is None, it is counted in `judge_failures`, and it is left out of both the achieved
and the possible points of its example and axis. An example none of whose positive criteria could be
graded has no score. It is left out of the mean and counted in `unscored_examples`.
Also unlike inspect_evals, which sends a system message and grades criteria one after another, the grader
gets the prompt as a single user message, as in the original, and an example's criteria are graded
concurrently.

Scores, as the original: an example scores Σ points of met criteria / Σ positive points (unclipped, can be
negative); accuracy = mean over examples clipped to [0, 1]; stderr = std of 1000 bootstrap means (each
clipped) drawn with numpy `default_rng(42)`; by_theme = clipped mean per theme; by_axis = Σ met points /
Σ positive points per axis, clipped.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from typing import Any

import numpy as np
from inspect_ai.model import ChatMessageUser, GenerateConfig, Model, get_model
from inspect_ai.scorer import Metric, SampleScore, Score, Scorer, Target, metric, scorer
from inspect_ai.solver import TaskState
from inspect_ai.util import collect
from inspect_evals.healthbench.scorer import GRADER_TEMPLATE
from pydantic import BaseModel

from posttrainbench.evaluation.postprocess import clean_answer

GRADER_ATTEMPTS = 5
BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_SEED = 42
# The original's request settings: reasoning models get a large completion budget and no temperature.
REASONING_GRADER_CONFIG = GenerateConfig(max_tokens=49152)
PLAIN_GRADER_CONFIG = GenerateConfig(temperature=0.0, max_tokens=512)
FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


class Grade(BaseModel):
    """The grading of one rubric criterion; `met` is None when grading failed."""

    points: int
    axis: str
    met: bool | None = None
    attempts: int = 0
    explanation: str = ""
    error: str | None = None


def grader_config(model: Model) -> GenerateConfig:
    name = model.name.lower()
    reasoning = any(tag in name for tag in ("gpt-5", "o1", "o3"))
    return REASONING_GRADER_CONFIG if reasoning else PLAIN_GRADER_CONFIG


def parse_grader_json(text: str) -> dict[str, Any]:
    """The grader's JSON object (markdown fence removed), or {} when it is not one."""
    try:
        parsed = json.loads(FENCE.sub("", text.strip()))
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def conversation_text(conversation: list[dict[str, str]], response: str) -> str:
    turns = [*conversation, {"role": "assistant", "content": response}]
    return "\n\n".join(f"{t['role']}: {t['content']}" for t in turns)


def axis_of(tags: list[str]) -> str:
    return next((t.split(":")[1] for t in tags if t.startswith("axis:")), "unknown")


def theme_of(tags: list[str]) -> str:
    return next((t.split(":")[1] for t in tags if t.startswith("theme:")), "unknown")


async def grade_criterion(grader: Model, conversation: str, rubric: dict[str, Any]) -> Grade:
    """Ask the grader until it returns a boolean `criteria_met`, at most GRADER_ATTEMPTS times."""
    grade = Grade(points=rubric["points"], axis=axis_of(rubric["tags"]))
    prompt = GRADER_TEMPLATE.replace("<<conversation>>", conversation).replace(
        "<<rubric_item>>", f"[{rubric['points']}] {rubric['criterion']}"
    )
    config = grader_config(grader)
    for attempt in range(1, GRADER_ATTEMPTS + 1):
        grade.attempts = attempt
        try:
            output = await grader.generate([ChatMessageUser(content=prompt)], config=config)
        except Exception as e:  # any failure of the grader call, after inspect's own retries
            grade.error = f"grader call failed: {type(e).__name__}: {e}"
            continue
        answer = parse_grader_json(output.completion)
        label = answer.get("criteria_met")
        if isinstance(label, bool):
            grade.met, grade.error = label, None
            grade.explanation = str(answer.get("explanation", ""))
            return grade
        grade.error = "grader answer has no boolean criteria_met"
    return grade


def example_score(grades: list[Grade]) -> float:
    """Σ points of met criteria / Σ positive points over the graded criteria; NaN when none of the
    positive criteria could be graded."""
    graded = [g for g in grades if g.met is not None]
    possible = sum(g.points for g in graded if g.points > 0)
    if possible <= 0:
        return math.nan
    return sum(g.points for g in graded if g.met) / possible


def bootstrap_std(values: list[float]) -> float:
    """Std of BOOTSTRAP_SAMPLES clipped bootstrap means, drawn exactly as the original does."""
    if len(values) < 2:
        return 0.0
    arr = np.array(values)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means = [
        np.clip(np.mean(rng.choice(arr, size=len(arr), replace=True)), 0, 1) for _ in range(BOOTSTRAP_SAMPLES)
    ]
    return float(np.std(means))


def _clipped_mean(values: list[float]) -> float:
    return float(np.clip(np.mean(values), 0, 1))


@metric
def healthbench_metrics() -> Metric:
    """accuracy, stderr, n_examples, unscored_examples, judge_calls, judge_failures,
    by_theme/<theme>, by_axis/<axis>."""

    def compute(scores: list[SampleScore]) -> dict[str, float]:
        per_example: list[float] = []
        by_theme: dict[str, list[float]] = defaultdict(list)
        axis_points: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])  # [achieved, possible]
        calls = failures = unscored = 0
        for s in scores:
            meta = s.score.metadata or {}
            grades = [Grade.model_validate(g) for g in meta.get("grades", [])]
            calls += len(grades)
            failures += sum(g.met is None for g in grades)
            for g in grades:
                if g.met is None:
                    continue
                if g.points > 0:
                    axis_points[g.axis][1] += g.points
                if g.met:
                    axis_points[g.axis][0] += g.points
            value = example_score(grades)
            if math.isnan(value):
                unscored += 1
                continue
            per_example.append(value)
            by_theme[meta.get("theme", "unknown")].append(value)
        out = {
            "accuracy": _clipped_mean(per_example) if per_example else 0.0,
            "stderr": bootstrap_std(per_example),
            "n_examples": float(len(per_example)),
            "unscored_examples": float(unscored),
            "judge_calls": float(calls),
            "judge_failures": float(failures),
        }
        for theme, values in sorted(by_theme.items()):
            out[f"by_theme/{theme}"] = _clipped_mean(values)
        for axis, (achieved, possible) in sorted(axis_points.items()):
            if possible > 0:
                out[f"by_axis/{axis}"] = float(np.clip(achieved / possible, 0, 1))
        return out

    return compute


@scorer(metrics=[healthbench_metrics()])
def rubric_grader(grader: str | Model) -> Scorer:
    """Grade the cleaned completion (think block removed, repetition limited) on every rubric criterion."""

    async def score(state: TaskState, target: Target) -> Score:
        model = get_model(grader)
        response = clean_answer(state.output.completion)
        conversation = conversation_text(state.metadata["conversation"], response)
        grades = await collect(*(grade_criterion(model, conversation, r) for r in state.metadata["rubrics"]))
        value = example_score(grades)
        failures = sum(g.met is None for g in grades)
        return Score(
            value={"score": value, "judge_failures": failures},
            answer=response,
            explanation=f"{sum(g.met is True for g in grades)}/{len(grades)} criteria met, {failures} ungraded",
            metadata={
                "theme": theme_of(state.metadata["example_tags"]),
                "grades": [g.model_dump() for g in grades],
            },
        )

    return score
