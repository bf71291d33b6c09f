"""From indexed runs to a leaderboard, by explicit rules that default to the original's
(reference: original.md §6):

- per (entry, benchmark, base model, seed) the run's final score; a flagged run, a run without a final
  score, and a cell without any run count as the base model's zero-shot score (and are counted);
- per benchmark the mean over base models; the weighted average over benchmarks with weights
  1/(instruct - base) normalised, from the zero-shot and instruct baselines (or the original's
  published factors, or uniform, when the baselines are missing);
- across seeds the mean, the sample std, and a bootstrap 95% CI (whole seeds resampled);
- per entry the minutes used, tokens, cost and flag rate.

Scores are fractions inside and percent on the leaderboard, as in the original README."""

from __future__ import annotations

import warnings
from collections import defaultdict
from typing import Literal

import numpy as np
from pydantic import BaseModel

from posttrainbench.results.schema import BASELINE_AGENTS, AgentRow, IndexedRun, Leaderboard

# The original's factors.json (paper eq. 1 from its Table 1 baselines), used when ours are missing.
ORIGINAL_WEIGHTS = {
    "aime2025": 0.226536549919078,
    "arenahardwriting": 0.0903518275042778,
    "bfcl": 0.0746078457817324,
    "gpqamain": 0.22462215653948,
    "gsm8k": 0.0935882347031865,
    "healthbench": 0.184144830733019,
    "humaneval": 0.106148554819225,
}


class Rules(BaseModel):
    """How runs become a leaderboard; every default is the original's rule."""

    substitute: bool = True  # flagged / failed / missing runs count as the zero-shot base score
    weights: Literal["auto", "baselines", "original", "uniform"] | dict[str, float] = "auto"
    tasks: list[str] | None = None  # default: every task an entry ran
    models: list[str] | None = None  # default: every base model an entry ran
    bootstrap: int = 2000
    bootstrap_seed: int = 0
    include_smoke: bool = False  # eval_limit runs are not comparable


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _pct(v: float | None) -> float | None:
    return None if v is None else round(100 * v, 4)


def baseline_scores(runs: list[IndexedRun], kind: str) -> dict[str, dict[str, float]]:
    """task -> model -> mean final score of the zero-shot or instruct baseline runs; zero-shot falls back
    to the base score the harness measured alongside any run of that cell."""
    cells: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in runs:
        if BASELINE_AGENTS.get(r.agent) == kind and r.final_score is not None:
            cells[r.task, r.model].append(r.final_score)
    if kind == "zero-shot":
        for r in runs:
            if (r.task, r.model) not in cells and r.base_score is not None:
                cells.setdefault(("fallback", r.task, r.model), []).append(r.base_score)
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for key, values in cells.items():
        task, model = key[-2:]
        if model not in out[task]:
            out[task][model] = sum(values) / len(values)
    return dict(out)


def weights(
    rules: Rules, tasks: list[str], models: list[str], zero: dict, instruct: dict
) -> tuple[dict[str, float], str, list[str]]:
    notes: list[str] = []
    choice = rules.weights
    if isinstance(choice, dict):
        missing = [t for t in tasks if t not in choice]
        if missing:
            raise ValueError(f"no weight given for {', '.join(missing)}")
        raw, source = {t: float(choice[t]) for t in tasks}, "given"
    else:
        raw, source = {}, choice
        if choice in ("auto", "baselines"):
            gaps = {}
            for t in tasks:
                b = _mean(zero.get(t, {}).get(m) for m in models)
                i = _mean(instruct.get(t, {}).get(m) for m in models)
                if b is not None and i is not None and i > b:
                    gaps[t] = i - b
            if len(gaps) == len(tasks):
                raw, source = {t: 1 / gaps[t] for t in tasks}, "baselines"
            elif choice == "baselines":
                raise ValueError(
                    "weights from baselines need zero-shot and instruct runs (instruct above base) for "
                    f"every task; missing for {', '.join(t for t in tasks if t not in gaps)}"
                )
            else:
                notes.append("weights: no zero-shot and instruct baselines for every task")
        if not raw and choice in ("auto", "original"):
            if all(t in ORIGINAL_WEIGHTS for t in tasks):
                raw, source = {t: ORIGINAL_WEIGHTS[t] for t in tasks}, "original"
            elif choice == "original":
                raise ValueError("the original's weights cover only its seven benchmarks")
        if not raw:
            raw, source = dict.fromkeys(tasks, 1.0), "uniform"
    total = sum(raw.values())
    return {t: w / total for t, w in raw.items()}, source, notes


def aggregate(runs: list[IndexedRun], rules: Rules | None = None) -> Leaderboard:
    rules = rules or Rules()
    left_out: dict[str, int] = defaultdict(int)
    kept = []
    for r in runs:
        if r.smoke and not rules.include_smoke:
            left_out["smoke runs (--eval-limit)"] += 1
        elif r.status is None:
            left_out["no outcome yet"] += 1
        else:
            kept.append(r)
    zero, instruct = baseline_scores(kept, "zero-shot"), baseline_scores(kept, "instruct")
    entries: dict[str, list[IndexedRun]] = defaultdict(list)
    baselines: dict[str, list[IndexedRun]] = defaultdict(list)
    for r in kept:
        kind = BASELINE_AGENTS.get(r.agent)
        (baselines[kind] if kind else entries[r.label]).append(r)
    tasks = rules.tasks or sorted({r.task for rs in entries.values() for r in rs} or {r.task for r in kept})
    models = rules.models or sorted(
        {r.model for rs in entries.values() for r in rs} or {r.model for r in kept}
    )
    w, source, notes = weights(rules, tasks, models, zero, instruct)
    rng = np.random.default_rng(rules.bootstrap_seed)
    rows = [_entry(label, rs, tasks, models, w, zero, rules, rng) for label, rs in entries.items()]
    for kind, rs in baselines.items():
        rows.append(
            _entry(kind, rs, tasks, models, w, zero, rules.model_copy(update={"substitute": False}), rng)
        )
        rows[-1].baseline = True
    rows.sort(key=lambda row: (row.avg is None, -(row.avg or 0), row.agent))
    rank = 0
    for row in rows:
        if not row.baseline:
            rank += 1
            row.rank = rank
    pct = lambda table: {t: {m: _pct(v) for m, v in cells.items()} for t, cells in table.items()}  # noqa: E731
    return Leaderboard(tasks=tasks, models=models, weights=w, weights_source=source, zero_shot=pct(zero),
                       instruct=pct(instruct), rows=rows, left_out=dict(left_out), notes=notes)  # fmt: skip


def _entry(
    label: str,
    runs: list[IndexedRun],
    tasks: list[str],
    models: list[str],
    w: dict[str, float],
    zero: dict[str, dict[str, float]],
    rules: Rules,
    rng: np.random.Generator,
) -> AgentRow:
    seeds = sorted({r.seed for r in runs})
    newest: dict[tuple[str, str, int], IndexedRun] = {}
    for r in sorted(runs, key=lambda r: r.created_at):  # the newest run of a cell counts, as in the original
        newest[r.task, r.model, r.seed] = r
    substituted = missing = 0
    values = np.full((len(tasks), len(models), len(seeds)), np.nan)
    for ti, t in enumerate(tasks):
        for mi, m in enumerate(models):
            base = zero.get(t, {}).get(m)
            for si, s in enumerate(seeds):
                r = newest.get((t, m, s))
                if r is None:
                    missing += 1
                    v = base if rules.substitute else None
                elif r.flagged or r.final_score is None:
                    substituted += rules.substitute
                    v = base if rules.substitute else None
                else:
                    v = r.final_score
                values[ti, mi, si] = np.nan if v is None else v
    per_seed_task = values.mean(axis=1)  # (task, seed); nan when a model's cell is unknown
    wv = np.array([w[t] for t in tasks])
    per_seed = wv @ per_seed_task  # (seed,)
    avg = float(per_seed.mean()) if seeds and not np.isnan(per_seed).any() else None
    std = float(np.std(per_seed, ddof=1)) if avg is not None and len(seeds) > 1 else None
    ci = (None, None)
    if avg is not None and rules.bootstrap:  # seeds are the unit: each resample draws whole seeds
        sample = per_seed[rng.integers(0, len(seeds), size=(rules.bootstrap, len(seeds)))].mean(axis=1)
        ci = tuple(float(x) for x in np.percentile(sample, [2.5, 97.5]))
    with warnings.catch_warnings():  # cells without any value stay nan (shown as missing)
        warnings.simplefilter("ignore", RuntimeWarning)
        cells = np.nanmean(values, axis=2)
        task_means = np.nanmean(np.nanmean(values, axis=1), axis=1)
    task_stds = per_seed_task.std(axis=1, ddof=1) if len(seeds) > 1 else np.full(len(tasks), np.nan)
    flagged = sum(r.flagged for r in runs)
    num = lambda x: None if np.isnan(x) else _pct(float(x))  # noqa: E731
    per_run = lambda attr: _mean(getattr(r, attr) for r in runs)  # noqa: E731
    return AgentRow(
        agent=label,
        scaffold=runs[0].agent,
        avg=_pct(avg),
        std=_pct(std),
        ci_low=_pct(ci[0]),
        ci_high=_pct(ci[1]),
        per_benchmark={t: num(task_means[i]) for i, t in enumerate(tasks)},
        per_benchmark_std={t: num(task_stds[i]) for i, t in enumerate(tasks)},
        per_cell={t: {m: num(cells[i, j]) for j, m in enumerate(models)} for i, t in enumerate(tasks)},
        seeds=len(seeds),
        runs=len(runs),
        flagged=flagged,
        substituted=substituted,
        missing=missing,
        flag_rate=round(flagged / len(runs), 4) if runs else 0.0,
        minutes=per_run("minutes_used"),
        input_tokens=per_run("input_tokens"),
        output_tokens=per_run("output_tokens"),
        cost_usd=per_run("cost_usd"),
    )
