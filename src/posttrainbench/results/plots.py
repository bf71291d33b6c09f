"""Leaderboard plots (scores, per-cell heatmaps, time, cost against score) and a run's resource monitor
over time.

Drawn through matplotlib's object API (no pyplot, so no global figure registry and safe in threads).
Files carry no dates or software versions and SVG ids are salted with a fixed string, so drawing the
same data again gives the same bytes. A plot with nothing to show is not written.
"""

from __future__ import annotations

import csv
import math
import re
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from posttrainbench.results.schema import AgentRow, Leaderboard

FORMATS = ("png", "svg")
SCORE_LABEL = "weighted average score (%)"
AGENT_STYLE = {"color": "tab:blue"}
BASELINE_STYLE = {"facecolor": "lightgrey", "hatch": "//", "edgecolor": "grey"}
# Text as <text> elements (searchable, smaller) rather than glyph paths; fixed hash salt for stable ids.
SAVE_RC = {"svg.fonttype": "none", "svg.hashsalt": "posttrainbench"}
METADATA: dict[str, dict[str, None]] = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "Creator": None, "Producer": None},
}
STAGE_COLORS = matplotlib.colormaps["Set2"].colors
GPU_UTIL = re.compile(r"gpu(\d+)_util_pct")

# rcParams are global: concurrent rc_contexts would restore each other's values, so saves take turns.
_save_lock = threading.Lock()


def write_plots(board: Leaderboard, out: Path, formats: tuple[str, ...] = FORMATS) -> dict[str, list[Path]]:
    """Write every leaderboard plot into `out` (created); returns plot name -> files written."""
    figures: dict[str, Figure] = {}
    ranked = _ranked(board.rows)
    if ranked:
        figures["scores"] = _scores(ranked, board.weights_source)
    agents = [row for row in ranked if not row.baseline]
    if agents and board.tasks and board.models:
        figures["heatmap"] = _heatmap(board, agents[0], f"top-ranked agent: {agents[0].agent}")
        for row in agents:
            name = base = f"heatmap-{_slug(row.agent)}"
            n = 2
            while name in figures:  # labels that differ only in replaced characters
                name, n = f"{base}-{n}", n + 1
            figures[name] = _heatmap(board, row, row.agent)
    timed = [row for row in ranked if row.minutes is not None]
    if timed:
        figures["time"] = _bars(
            timed, [row.minutes for row in timed], "mean minutes per run", "time used", "{:.0f}"
        )
    costed = [row for row in ranked if row.cost_usd is not None and row.avg is not None]
    if costed:
        figures["cost"] = _cost(costed)
    return {name: _save(fig, Path(out) / name, formats) for name, fig in figures.items()}


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points on the cost-vs-score Pareto front (lower cost, higher score), ordered by cost.

    A point is on it unless another costs no more and scores no less, one of them strictly; exact
    duplicates of a front point are on it too (ordered by index).
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1], i))
    front: list[int] = []
    for i in order:
        if not front or points[i][1] > points[front[-1]][1] or points[i] == points[front[-1]]:
            front.append(i)
    return front


def monitor_plot(csv_path: Path, out_stem: Path, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Plot a run's monitor.csv (see src/posttrainbench/monitor.py for its columns) over time."""
    csv_path = Path(csv_path)
    with csv_path.open(newline="") as f:
        reader = csv.DictReader(f)
        samples = _samples(reader)
        columns = reader.fieldnames or []
    if not samples:
        return []
    gpus = [
        m.group(1)
        for column in columns
        if (m := GPU_UTIL.fullmatch(column))
        and any(
            not math.isnan(_value(row.get(f"gpu{m.group(1)}_{field}")))
            for _, _, row in samples
            for field in ("util_pct", "mem_used_mb")
        )
    ]
    panels = [("cpu_percent", "CPU (%)"), ("rss_mb", "RSS (MB)")]
    n_axes = len(panels) + (2 if gpus else 0)
    fig = Figure(figsize=(10, 2.2 * n_axes + 1), layout="tight")
    axes = fig.subplots(n_axes, 1, sharex=True)
    for ax, (column, label) in zip(axes, panels, strict=False):
        ax.plot(*_series(samples, column), color="tab:blue")
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
    if gpus:
        util_ax, mem_ax = axes[2], axes[3]
        for i, gpu in enumerate(gpus):
            color = f"C{i}"
            util_ax.plot(*_series(samples, f"gpu{gpu}_util_pct"), color=color, label=f"GPU {gpu}")
            mem_ax.plot(*_series(samples, f"gpu{gpu}_mem_used_mb"), color=color, label=f"GPU {gpu} used")
            totals = [
                v for _, _, row in samples if not math.isnan(v := _value(row.get(f"gpu{gpu}_mem_total_mb")))
            ]
            if totals:
                mem_ax.axhline(
                    max(totals), color=color, linestyle="--", linewidth=1, label=f"GPU {gpu} total"
                )
        util_ax.set_ylabel("GPU util (%)")
        util_ax.set_ylim(0, 105)
        mem_ax.set_ylim(bottom=0)
        mem_ax.set_ylabel("GPU memory (MB)")
        util_ax.legend(loc="best", fontsize=8)
        mem_ax.legend(loc="best", fontsize=8)
    _shade_stages(axes, samples)
    axes[-1].set_xlabel("elapsed (min)")
    fig.suptitle(f"resource monitor: {csv_path.parent.name}")
    return _save(fig, Path(out_stem), formats)


def _ranked(rows: Sequence[AgentRow]) -> list[AgentRow]:
    """Highest average first, rows without one last; ties keep the board's order."""
    return sorted(rows, key=lambda row: (row.avg is None, -(row.avg or 0.0)))


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", label)


def _bar_height(n: int) -> float:
    return max(3.0, 0.32 * n + 1.5)


def _bars(
    rows: list[AgentRow],
    values: Sequence[float | None],
    xlabel: str,
    title: str,
    fmt: str,
    errors: Sequence[tuple[float, float] | None] = (),
) -> Figure:
    """Horizontal bars, one per row top to bottom, baselines hatched; None values are marked "n/a"."""
    fig = Figure(figsize=(9, _bar_height(len(rows))), layout="tight")
    ax = fig.add_subplot()
    ends = [0.0]
    for i, (row, value) in enumerate(zip(rows, values, strict=True)):
        if value is None:
            ax.text(0, i, " n/a", va="center", fontsize=8, color="dimgrey")
            continue
        ax.barh(i, value, **(BASELINE_STYLE if row.baseline else AGENT_STYLE))
        end = value
        if i < len(errors) and (error := errors[i]) is not None:
            low, high = max(0.0, value - error[0]), max(0.0, error[1] - value)
            ax.errorbar(value, i, xerr=[[low], [high]], fmt="none", ecolor="black", capsize=3, linewidth=1)
            end = value + high
        ax.text(end, i, " " + fmt.format(value), va="center", fontsize=8)
        ends.append(end)
    ax.set_yticks(range(len(rows)), labels=[row.agent for row in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)  # first row on top
    ax.set_xlim(0, max(max(ends) * 1.15, 1.0))
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    if any(row.baseline for row in rows):
        ax.legend(
            handles=[Patch(**AGENT_STYLE, label="agent"), Patch(**BASELINE_STYLE, label="baseline")],
            loc="lower right",
            fontsize=8,
        )
    return fig


def _scores(rows: list[AgentRow], weights_source: str) -> Figure:
    errors = [
        (row.ci_low, row.ci_high) if row.ci_low is not None and row.ci_high is not None else None
        for row in rows
    ]
    title = f"leaderboard (benchmark weights: {weights_source}; bars: 95% CI)"
    return _bars(rows, [row.avg for row in rows], SCORE_LABEL, title, "{:.1f}", errors)


def _heatmap(board: Leaderboard, row: AgentRow, title: str) -> Figure:
    values = np.array(
        [
            [
                math.nan if (v := row.per_cell.get(task, {}).get(model)) is None else v
                for model in board.models
            ]
            for task in board.tasks
        ]
    )
    fig = Figure(figsize=(1.5 * len(board.models) + 3.5, 0.5 * len(board.tasks) + 2), layout="tight")
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0, vmax=100, aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        if math.isnan(value):
            ax.text(j, i, "n/a", ha="center", va="center", fontsize=9, color="dimgrey")
        else:
            color = "black" if value > 60 else "white"  # dark text on viridis' light end only
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=9, color=color)
    ax.set_xticks(range(len(board.models)), labels=board.models, rotation=20, ha="right")
    ax.set_yticks(range(len(board.tasks)), labels=board.tasks)
    ax.set_xlabel("base model")
    ax.set_ylabel("benchmark")
    avg = "n/a" if row.avg is None else f"{row.avg:.1f}%"
    ax.set_title(f"{title} (average {avg})")
    fig.colorbar(image, ax=ax, label="score (%)")
    return fig


def _cost(rows: list[AgentRow]) -> Figure:
    fig = Figure(figsize=(9, 6), layout="tight")
    ax = fig.add_subplot()
    agents = [row for row in rows if not row.baseline]
    baselines = [row for row in rows if row.baseline]
    for group, style, label in ((agents, AGENT_STYLE, "agent"), (baselines, {"color": "grey"}, "baseline")):
        if group:
            ax.scatter([r.cost_usd for r in group], [r.avg for r in group], label=label, zorder=3, **style)
    # The front is the agents' trade-off: baselines did not spend on an agent.
    front = [agents[i] for i in pareto_front([(r.cost_usd or 0.0, r.avg or 0.0) for r in agents])]
    if front:
        ax.step(
            [r.cost_usd for r in front],
            [r.avg for r in front],
            where="post",
            color="tab:red",
            marker="o",  # rings the front's points, so a front of one point still shows
            markersize=11,
            markerfacecolor="none",
            label="Pareto front",
        )
    for row in rows:
        ax.annotate(row.agent, (row.cost_usd, row.avg), xytext=(4, 4), textcoords="offset points", fontsize=8)
    ax.set_xlabel("mean cost per run (USD)")
    ax.set_ylabel(SCORE_LABEL)
    ax.set_title("cost against score")
    ax.legend(loc="best", fontsize=8)
    return fig


def _samples(rows: csv.DictReader) -> list[tuple[float, bool, dict[str, str]]]:
    """(minutes since the first sample, whether the monitor started afresh there, the row) per row with a
    time. elapsed_s restarts at 0 when a stage re-run appends rows, so x comes from the time column."""
    samples: list[tuple[float, bool, dict[str, str]]] = []
    t0: datetime | None = None
    last_elapsed = math.nan
    for row in rows:
        try:
            t = datetime.fromisoformat(row.get("time") or "")
        except ValueError:
            continue
        t = t if t.tzinfo else t.replace(tzinfo=UTC)
        t0 = t0 or t
        elapsed = _value(row.get("elapsed_s"))
        samples.append(((t - t0).total_seconds() / 60, elapsed < last_elapsed, row))
        if not math.isnan(elapsed):
            last_elapsed = elapsed
    return samples


def _series(
    samples: list[tuple[float, bool, dict[str, str]]], column: str
) -> tuple[list[float], list[float]]:
    xs: list[float] = []
    ys: list[float] = []
    for minutes, restarted, row in samples:
        if restarted:  # break the line across the gap before a re-run
            xs.append(math.nan)
            ys.append(math.nan)
        xs.append(minutes)
        ys.append(_value(row.get(column)))
    return xs, ys


def _value(cell: str | None) -> float:
    try:
        return float(cell) if cell else math.nan
    except ValueError:
        return math.nan


def _shade_stages(axes: Sequence[Axes], samples: list[tuple[float, bool, dict[str, str]]]) -> None:
    """Shade each contiguous stretch of one stage; a span reaches the next stage's first sample."""
    spans: list[list] = []  # [stage, start, end]
    for minutes, restarted, row in samples:
        stage = row.get("stage") or ""
        if spans and not restarted:
            spans[-1][2] = minutes
            if spans[-1][0] == stage:
                continue
        spans.append([stage, minutes, minutes])
    colors: dict[str, tuple[float, ...]] = {}
    for stage, start, end in spans:
        if not stage:
            continue
        # Set2, not the line colours' tab10, so a span never matches a GPU's line.
        color = colors.setdefault(stage, STAGE_COLORS[len(colors) % len(STAGE_COLORS)])
        for ax in axes:
            ax.axvspan(start, end, color=color, alpha=0.15, linewidth=0)
    if colors:
        axes[0].legend(
            handles=[Patch(color=color, alpha=0.3, label=stage) for stage, color in colors.items()],
            title="stage",
            loc="lower left",
            bbox_to_anchor=(0, 1.02),
            ncols=min(len(colors), 6),
            fontsize=8,
            title_fontsize=8,
            frameon=False,
        )


def _save(fig: Figure, stem: Path, formats: tuple[str, ...]) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    with _save_lock, matplotlib.rc_context(SAVE_RC):
        for fmt in formats:
            path = stem.with_name(f"{stem.name}.{fmt}")
            fig.savefig(path, format=fmt, metadata=METADATA.get(fmt))
            paths.append(path)
    return paths
