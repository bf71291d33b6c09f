"""Leaderboard and monitor plots drawn with the real matplotlib: the files each plot writes, that they
are valid PNG and SVG naming the agents, missing values, the Pareto front, and reproducible output."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from posttrainbench.results.plots import monitor_plot, pareto_front, write_plots
from posttrainbench.results.schema import AgentRow, Leaderboard

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TASKS = ["gsm8k", "humaneval"]
MODELS = ["Qwen3-1.7B-Base", "gemma-3-4b-pt"]


def cells(a: float | None, b: float, c: float, d: float) -> dict[str, dict[str, float | None]]:
    return {"gsm8k": {MODELS[0]: a, MODELS[1]: b}, "humaneval": {MODELS[0]: c, MODELS[1]: d}}


def board() -> Leaderboard:
    rows = [
        AgentRow(
            rank=1,
            agent="claude-code opus",
            scaffold="claude-code",
            avg=42.5,
            ci_low=38.0,
            ci_high=47.1,
            per_cell=cells(50, 40, 45, 35),
            minutes=300.0,
            cost_usd=12.5,
        ),
        AgentRow(
            rank=2,
            agent="codex/gpt-5",
            scaffold="codex",
            avg=30.2,
            ci_low=25.0,
            ci_high=36.0,
            per_cell=cells(None, 30, 35, 25),
            minutes=250.0,
            cost_usd=4.0,
        ),
        AgentRow(
            rank=3,
            agent="gemini-cli",
            scaffold="gemini-cli",
            avg=20.1,
            ci_low=None,
            ci_high=None,
            per_cell=cells(20, 22, 18, 20),
            minutes=None,
            cost_usd=None,
        ),
        AgentRow(
            agent="zero-shot", scaffold="reference", avg=10.0, per_cell=cells(10, 9, 11, 10), baseline=True
        ),
        AgentRow(
            agent="instruct", scaffold="reference", avg=55.0, per_cell=cells(60, 50, 55, 55), baseline=True
        ),
    ]
    return Leaderboard(
        tasks=TASKS, models=MODELS, weights={t: 0.5 for t in TASKS}, weights_source="uniform", rows=rows
    )


def svg_text(path: Path) -> str:
    return " ".join("".join(element.itertext()) for element in ET.parse(path).getroot().iter())


def test_write_plots(tmp_path: Path) -> None:
    written = write_plots(board(), tmp_path / "plots")

    assert set(written) == {
        "scores",
        "heatmap",
        "heatmap-claude-code-opus",
        "heatmap-codex-gpt-5",
        "heatmap-gemini-cli",
        "time",
        "cost",
    }
    for name, paths in written.items():
        assert paths == [tmp_path / "plots" / f"{name}.png", tmp_path / "plots" / f"{name}.svg"]
        png, svg = paths
        assert png.read_bytes().startswith(PNG_SIGNATURE)
        assert png.stat().st_size > 5_000, name
        svg_text(svg)  # parses
    scores = svg_text(tmp_path / "plots" / "scores.svg")
    for label in ("claude-code opus", "codex/gpt-5", "gemini-cli", "zero-shot", "instruct"):
        assert label in scores
    assert "weighted average score (%)" in scores
    assert "claude-code opus" in svg_text(tmp_path / "plots" / "heatmap.svg")
    codex = svg_text(tmp_path / "plots" / "heatmap-codex-gpt-5.svg")
    assert "n/a" in codex and "35.0" in codex
    time = svg_text(tmp_path / "plots" / "time.svg")
    assert "codex/gpt-5" in time and "gemini-cli" not in time  # no minutes: left out
    cost = svg_text(tmp_path / "plots" / "cost.svg")
    assert "claude-code opus" in cost and "gemini-cli" not in cost


def test_reproducible_and_sparse(tmp_path: Path) -> None:
    sparse = board()
    for row in sparse.rows:
        row.cost_usd = None
    sparse.rows[2].avg = None
    a = write_plots(sparse, tmp_path / "a", formats=("svg",))
    b = write_plots(sparse, tmp_path / "b", formats=("svg",))

    assert "cost" not in a and not (tmp_path / "a" / "cost.svg").exists()
    for name, [path] in a.items():
        assert path.read_bytes() == b[name][0].read_bytes(), name
        assert str(tmp_path) not in path.read_text()
    assert "n/a" in svg_text(tmp_path / "a" / "scores.svg")
    empty = Leaderboard(tasks=[], models=[], weights={}, weights_source="uniform", rows=[])
    assert write_plots(empty, tmp_path / "empty") == {}


def test_pareto_front() -> None:
    points = [
        (1.0, 10.0),  # 0: front
        (2.0, 20.0),  # 1: front
        (2.0, 15.0),  # 2: same cost, lower score
        (3.0, 20.0),  # 3: same score, higher cost
        (0.5, 5.0),  # 4: cheapest
        (4.0, 30.0),  # 5: best
        (1.0, 10.0),  # 6: duplicate of 0
        (5.0, 25.0),  # 7: dominated by 5
    ]
    assert pareto_front(points) == [4, 0, 6, 1, 5]
    assert pareto_front([]) == []
    assert pareto_front([(3.0, 1.0)]) == [0]


HEADER = (
    "time,elapsed_s,stage,cpu_percent,rss_mb,mem_used_mb,mem_total_mb,"
    "gpu0_util_pct,gpu0_mem_used_mb,gpu0_mem_total_mb,gpu0_power_w\n"
)
# Two stages; the second starts afresh (elapsed_s back at 0) after a gap; some cells empty.
MONITOR = HEADER + (
    "2026-01-01T10:00:00+00:00,0.0,solve,10.0,400.0,1000,24000,0,0,81559,60.0\n"
    "2026-01-01T10:01:00+00:00,60.0,solve,95.5,900.0,2000,24000,80,30000,81559,300.5\n"
    "2026-01-01T10:02:00+00:00,120.0,solve,,,,,,,,\n"
    "2026-01-01T10:10:00+00:00,0.0,evaluate,50.0,1200.0,3000,24000,90,60000,81559,400.0\n"
    "2026-01-01T10:11:00+00:00,60.0,evaluate,40.0,1100.0,3000,24000,95,61000,81559,410.0\n"
)


def test_monitor_plot(tmp_path: Path) -> None:
    csv_path = tmp_path / "run" / "monitor.csv"
    csv_path.parent.mkdir()
    csv_path.write_text(MONITOR)

    paths = monitor_plot(csv_path, tmp_path / "out" / "monitor")

    assert paths == [tmp_path / "out" / "monitor.png", tmp_path / "out" / "monitor.svg"]
    assert paths[0].read_bytes().startswith(PNG_SIGNATURE)
    text = svg_text(paths[1])
    for label in ("solve", "evaluate", "GPU util (%)", "GPU memory (MB)", "elapsed (min)"):
        assert label in text

    csv_path.write_text(HEADER)
    assert monitor_plot(csv_path, tmp_path / "empty" / "monitor") == []
    csv_path.write_text("")
    assert monitor_plot(csv_path, tmp_path / "empty" / "monitor") == []
    assert not (tmp_path / "empty").exists()


def test_monitor_plot_without_gpu_values(tmp_path: Path) -> None:
    csv_path = tmp_path / "monitor.csv"
    csv_path.write_text(HEADER + "2026-01-01T10:00:00+00:00,0.0,,10.0,400.0,1000,24000,,,,\n")

    [svg] = monitor_plot(csv_path, tmp_path / "monitor", formats=("svg",))

    text = svg_text(svg)
    assert "CPU (%)" in text and "GPU util (%)" not in text
