"""The leaderboard as a terminal table, Markdown (the original README's table), CSV or JSON."""

from __future__ import annotations

import csv
import io
import json

from rich.table import Table

from posttrainbench.results.schema import AgentRow, Leaderboard

FORMATS = ("table", "md", "csv", "json")


def _num(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _avg(row: AgentRow) -> str:
    out = _num(row.avg)
    if row.std is not None:
        out += f" ± {row.std:.1f}"
    if row.ci_low is not None and row.seeds > 1:
        out += f" [{row.ci_low:.1f}, {row.ci_high:.1f}]"
    return out


def _bench(row: AgentRow, task: str) -> str:
    v, sd = row.per_benchmark.get(task), row.per_benchmark_std.get(task)
    return _num(v) + (f" ± {sd:.1f}" if sd is not None else "")


def _cost(v: float | None) -> str:
    return "-" if v is None else f"${v:.2f}"


def columns(board: Leaderboard) -> list[str]:
    return ["rank", "agent", "scaffold", "average", *board.tasks, "runs", "flagged", "as base", "minutes",
            "cost/run"]  # fmt: skip


def cells(board: Leaderboard, row: AgentRow) -> list[str]:
    rank = "-" if row.baseline else str(row.rank)
    agent = row.agent + (" (baseline)" if row.baseline else "")
    return [rank, agent, row.scaffold, _avg(row), *(_bench(row, t) for t in board.tasks), str(row.runs),
            str(row.flagged), str(row.substituted + row.missing), _num(row.minutes, 0),
            _cost(row.cost_usd)]  # fmt: skip


def footer(board: Leaderboard) -> list[str]:
    weights = ", ".join(f"{t} {w:.3f}" for t, w in board.weights.items())
    lines = [f"weights ({board.weights_source}): {weights}",
             f"models: {', '.join(board.models)}; scores in percent, mean over base models; "
             "average ± std over seeds [bootstrap 95% CI]; as base: runs counted as the zero-shot base "
             "score (flagged, failed or missing)"]  # fmt: skip
    lines += [f"left out: {n} {why}" for why, n in board.left_out.items()]
    return lines + board.notes


def table(board: Leaderboard) -> Table:
    t = Table(box=None, header_style="bold", caption="\n".join(footer(board)), caption_justify="left")
    for col in columns(board):
        t.add_column(col, no_wrap=col == "agent")
    for row in board.rows:
        t.add_row(*cells(board, row), style="dim" if row.baseline else None)
    return t


def markdown(board: Leaderboard) -> str:
    cols = columns(board)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells(board, r)) + " |" for r in board.rows]
    return "\n".join(lines + [""] + [f"- {line}" for line in footer(board)]) + "\n"


def csv_text(board: Leaderboard) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["rank", "agent", "scaffold", "baseline", "avg", "std", "ci_low", "ci_high", *board.tasks,
                "seeds", "runs", "flagged", "substituted", "missing", "minutes", "input_tokens",
                "output_tokens", "cost_usd"])  # fmt: skip
    for r in board.rows:
        w.writerow([r.rank, r.agent, r.scaffold, r.baseline, r.avg, r.std, r.ci_low, r.ci_high,
                    *(r.per_benchmark.get(t) for t in board.tasks), r.seeds, r.runs, r.flagged,
                    r.substituted, r.missing, r.minutes, r.input_tokens, r.output_tokens, r.cost_usd])  # fmt: skip
    return buf.getvalue()


def json_text(board: Leaderboard) -> str:
    return json.dumps([r.model_dump(mode="json") for r in board.rows], indent=2) + "\n"
