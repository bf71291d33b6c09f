"""The shapes results take: one indexed run (a row of the SQLite index, read from its run.json) and
the leaderboard the aggregation computes from them."""

from __future__ import annotations

from typing import NamedTuple

from pydantic import BaseModel

# Built-in agents whose runs are reference points, not entries: zero-shot is the base model as is,
# instruct the family's official instruct model. Their scores are never substituted.
BASELINE_AGENTS = {
    "zero-shot": "zero-shot",
    "noop": "zero-shot",
    "instruct": "instruct",
    "few-shot": "few-shot",
}


class IndexedRun(BaseModel):
    """What aggregation needs from one run.json (scores as fractions, as in metrics.json)."""

    run_id: str
    path: str  # the run directory, relative to the results directory
    agent: str  # the agent's name (`ptb list agents`)
    agent_config: str = ""
    label: str  # the leaderboard entry it belongs to (agent, config, budget, continuation)
    task: str
    model: str
    seed: int = 0
    budget_hours: float
    continued: bool = False  # --continue-until-deadline runs form their own entries
    smoke: bool = False  # eval_limit runs: not comparable, left out
    experiment: str | None = None
    attempt: int = 1
    created_at: str = ""
    status: str | None = None  # complete | incomplete | None (no outcome yet)
    failure_class: str | None = None
    flagged: bool = False
    flag_reasons: list[str] = []
    base_score: float | None = None
    final_score: float | None = None
    counted_score: float | None = None
    minutes_used: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None


class ScoredRun(NamedTuple):
    """The fields of an indexed run that aggregation reads, as a plain tuple: a leaderboard over
    100,000 runs loads these instead of IndexedRun models (flags may be 0/1 as SQLite stores them)."""

    agent: str
    label: str
    task: str
    model: str
    seed: int
    created_at: str
    status: str | None
    smoke: bool
    flagged: bool
    base_score: float | None
    final_score: float | None
    minutes_used: float | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None


class AgentRow(BaseModel):
    """One leaderboard entry; scores in percent (as the original README shows them)."""

    rank: int = 0
    agent: str  # the entry's label
    scaffold: str  # the agent it ran as (claude-code, codex, reference, ...)
    avg: float | None  # weighted average over benchmarks of the mean over base models (seed mean)
    std: float | None = None  # sample std over seeds of that average
    ci_low: float | None = None  # bootstrap 95% CI of the average (whole seeds resampled)
    ci_high: float | None = None
    per_benchmark: dict[str, float | None] = {}  # task -> mean over base models (and seeds)
    per_benchmark_std: dict[str, float | None] = {}  # task -> std over seeds
    per_cell: dict[str, dict[str, float | None]] = {}  # task -> model -> mean over seeds
    seeds: int = 0
    runs: int = 0
    flagged: int = 0  # runs flagged by the integrity decision (counted as the base model)
    substituted: int = 0  # runs counted as the base model: flagged, failed or missing a score
    missing: int = 0  # (task, model, seed) cells without any run (counted as the base model)
    flag_rate: float = 0.0
    minutes: float | None = None  # mean minutes the agent used per run
    input_tokens: float | None = None  # mean per run
    output_tokens: float | None = None
    cost_usd: float | None = None  # mean per run
    baseline: bool = False  # a zero-shot or instruct reference row


class Leaderboard(BaseModel):
    tasks: list[str]
    models: list[str]
    weights: dict[str, float]  # task -> normalised weight
    weights_source: str  # "baselines" (1/(instruct - base)), "original" (the published factors), "uniform"
    zero_shot: dict[str, dict[str, float]] = {}  # task -> model -> base score (percent)
    instruct: dict[str, dict[str, float]] = {}  # task -> model -> instruct score (percent)
    rows: list[AgentRow]
    left_out: dict[str, int] = {}  # why runs were left out -> count (smoke runs, no outcome, ...)
    notes: list[str] = []
