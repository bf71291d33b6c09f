"""From indexed runs to a leaderboard, by explicit rules that default to the original's
(reference: original.md §6):

- per (entry, benchmark, base model, seed) the run's final score; a flagged run, a run without a final
  score, and a cell without any run count as the base model's zero-shot score (and are counted);
- per benchmark the mean over base models; the weighted average over benchmarks with weights
  1/(instruct - base) normalised, from the zero-shot and instruct baselines (or the original's
  published factors, or uniform, when the baselines are missing);
- across seeds the mean, the sample std, and a bootstrap 95% CI (whole seeds resampled);
- per entry the minutes used, tokens, cost and flag rate.

Scores are fractions inside and percent on the leaderboard, as in the original README. `leaderboard`
keeps the board it computes in the index, to read it back while no run changes."""

from __future__ import annotations

import gc
import hashlib
import importlib.metadata
import sys
import warnings
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from posttrainbench.results import index
from posttrainbench.results.schema import BASELINE_AGENTS, AgentRow, IndexedRun, Leaderboard, ScoredRun

if TYPE_CHECKING:  # imported where a board is computed: a board read back from the index needs no numpy
    import numpy as np

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


def baseline_scores(
    runs: list[ScoredRun], baselines: dict[str, list[ScoredRun]]
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """(zero-shot, instruct): task -> model -> mean final score of that baseline's runs; zero-shot falls
    back to the base score the harness measured alongside any run of that cell."""
    cells: dict[str, dict[tuple[str, str], list[float]]] = {"zero-shot": {}, "instruct": {}}
    for kind, table in cells.items():
        for r in baselines.get(kind, ()):
            if r.final_score is not None:
                table.setdefault((r.task, r.model), []).append(r.final_score)
    zero = cells["zero-shot"]
    if not {(r.task, r.model) for r in runs} <= zero.keys():
        fallback: dict[tuple[str, str], list[float]] = {}
        for r in runs:
            if r.base_score is not None and (r.task, r.model) not in zero:
                fallback.setdefault((r.task, r.model), []).append(r.base_score)
        zero.update(fallback)
    return _by_task(zero), _by_task(cells["instruct"])


def _by_task(cells: dict[tuple[str, str], list[float]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for (task, model), values in cells.items():
        out.setdefault(task, {})[model] = sum(values) / len(values)
    return out


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


def leaderboard(results: Path, rules: Rules | None = None) -> Leaderboard:
    """The leaderboard of every run under `results`, the index brought up to date first. A board the
    same rules and code computed from the same generation of runs is read back from the index."""
    rules = rules or Rules()
    key = hashlib.sha256(f"{CODE} {rules.model_dump_json()}".encode()).hexdigest()
    with _collector_paused():
        generation, kept, runs = index.board_or_runs(results, key)
        if kept is not None:
            return Leaderboard.model_validate_json(kept)
        if not runs:
            raise ValueError(f"no runs under {results} (a run directory holds run.json)")
        board = aggregate(runs, rules)
    text = board.model_dump_json()
    if Leaderboard.model_validate_json(text) == board:  # kept only if it reads back the same (no NaN)
        index.keep_board(results, key, generation, text)
    return board


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector paused: its passes over 100,000 freshly loaded rows (freed by reference
    counting, not by it) would add 10 to 20% to loading and aggregating them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _code() -> str:
    here = Path(__file__).parent
    code = b"".join((here / name).read_bytes() for name in ("aggregate.py", "index.py", "schema.py"))
    versions = f"numpy {importlib.metadata.version('numpy')}, Python {sys.version}"
    return hashlib.sha256(code + versions.encode()).hexdigest()


CODE = _code()  # what a kept board depends on besides the runs and the rules: this code, its arithmetic


def aggregate(runs: Iterable[IndexedRun | ScoredRun], rules: Rules | None = None) -> Leaderboard:
    """The leaderboard of `runs` (IndexedRun models or the lighter rows of index.load_scored), taken in
    their order: it decides which of two runs of a cell created at the same time counts, the order of
    floating-point sums, and which entry draws its bootstrap resamples first."""
    rules = rules or Rules()
    left_out: dict[str, int] = defaultdict(int)
    kept = []
    for r in runs:
        if r.smoke and not rules.include_smoke:
            left_out["smoke runs (--eval-limit)"] += 1
        elif r.status is None:
            left_out["no outcome yet"] += 1
        else:
            kept.append(r if type(r) is ScoredRun else ScoredRun(*_fields(r)))
    entries: dict[str, list[ScoredRun]] = {}  # label -> runs
    baselines: dict[str, list[ScoredRun]] = {}  # baseline kind -> runs
    for r in kept:
        kind = BASELINE_AGENTS.get(r.agent)
        group, key = (baselines, kind) if kind else (entries, r.label)
        if key in group:
            group[key].append(r)
        else:
            group[key] = [r]
    zero, instruct = baseline_scores(kept, baselines)
    chosen = [r for rs in entries.values() for r in rs] or kept
    tasks = rules.tasks or sorted({r.task for r in chosen})
    models = rules.models or sorted({r.model for r in chosen})
    w, source, notes = weights(rules, tasks, models, zero, instruct)
    import numpy as np

    rng = np.random.default_rng(rules.bootstrap_seed)
    rows = [_entry(label, rs, tasks, models, w, zero, rules, rng) for label, rs in entries.items()]
    plain = rules.model_copy(update={"substitute": False})  # baselines count as they are
    for kind, rs in baselines.items():
        rows.append(_entry(kind, rs, tasks, models, w, zero, plain, rng))
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


_fields = attrgetter(*ScoredRun._fields)


def _entry(
    label: str,
    runs: list[ScoredRun],
    tasks: list[str],
    models: list[str],
    w: dict[str, float],
    zero: dict[str, dict[str, float]],
    rules: Rules,
    rng: np.random.Generator,
) -> AgentRow:
    import numpy as np

    col = ScoredRun._make(zip(*runs, strict=True))  # the runs' fields as columns
    seeds = sorted(set(col.seed))
    keys = list(zip(col.task, col.model, col.seed, strict=True))
    newest = dict(zip(keys, range(len(runs)), strict=True))  # cell -> the index of its last run
    if len(newest) < len(runs):  # the newest run of a cell counts, as in the original; of equal ones the last
        newest, created = {}, col.created_at
        for i, cell in enumerate(keys):
            if cell not in newest or created[i] >= created[newest[cell]]:
                newest[cell] = i
    flag, final = col.flagged, col.final_score
    substituted = missing = 0
    grid = []
    for t in tasks:
        zero_t = zero.get(t, {})
        for m in models:
            base = zero_t.get(m) if rules.substitute else None
            for s in seeds:
                i = newest.get((t, m, s))
                if i is None:
                    missing += 1
                    v = base
                elif flag[i] or final[i] is None:
                    substituted += rules.substitute
                    v = base
                else:
                    v = final[i]
                grid.append(np.nan if v is None else v)
    values = np.array(grid, dtype=float).reshape(len(tasks), len(models), len(seeds))
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
    cells, task_means, task_stds = cells.tolist(), task_means.tolist(), task_stds.tolist()
    flagged = sum(col.flagged)
    num = lambda x: None if x != x else _pct(x)  # noqa: E731  (x != x: nan)
    return AgentRow(
        agent=label,
        scaffold=col.agent[0],
        avg=_pct(avg),
        std=_pct(std),
        ci_low=_pct(ci[0]),
        ci_high=_pct(ci[1]),
        per_benchmark={t: num(task_means[i]) for i, t in enumerate(tasks)},
        per_benchmark_std={t: num(task_stds[i]) for i, t in enumerate(tasks)},
        per_cell={t: {m: num(cells[i][j]) for j, m in enumerate(models)} for i, t in enumerate(tasks)},
        seeds=len(seeds),
        runs=len(runs),
        flagged=flagged,
        substituted=substituted,
        missing=missing,
        flag_rate=round(flagged / len(runs), 4) if runs else 0.0,
        minutes=_mean(col.minutes_used),
        input_tokens=_mean(col.input_tokens),
        output_tokens=_mean(col.output_tokens),
        cost_usd=_mean(col.cost_usd),
    )
