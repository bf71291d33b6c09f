"""`ptb demo`: three agents x arith x ptb-tiny, locally, then a results table and summary.json."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, TypeAdapter
from rich.console import Console
from rich.table import Table

from posttrainbench.lifecycle.pipeline import run_one
from posttrainbench.lifecycle.prepare import check_writable
from posttrainbench.specs import RunSpec

TASK, MODEL = "arith", "ptb-tiny"


class SummaryRow(BaseModel):
    agent: str
    task: str
    model: str
    status: str
    base_score: float | None
    final_score: float | None
    flagged: bool
    counted_score: float | None
    minutes_used: float | None
    run_dir: str


def run_demo(out: Path, reference_minutes: float, sandbox: str, console: Console) -> list[SummaryRow]:
    check_writable(out)
    budgets = {"noop": 2.0, "reference": reference_minutes, "cheat-testset": max(1.5, reference_minutes / 2)}
    rows = []
    for agent, minutes in budgets.items():
        console.rule(f"[bold]{agent}[/] ({minutes:g} min budget)")
        spec = RunSpec(
            task=TASK, model=MODEL, agent=agent, budget_seconds=minutes * 60,
            sandbox=sandbox, network="none", grace_seconds=10,
        )  # fmt: skip
        run, rec = run_one(spec, out, console)
        o = rec.outcome
        rows.append(
            SummaryRow(
                agent=agent,
                task=TASK,
                model=MODEL,
                status=o.status if o else "incomplete",
                base_score=o.base_score if o else None,
                final_score=o.final_score if o else None,
                flagged=o.flagged if o else False,
                counted_score=o.counted_score if o else None,
                minutes_used=o.minutes_used if o else None,
                run_dir=str(run.path),
            )
        )
    (out / "summary.json").write_bytes(TypeAdapter(list[SummaryRow]).dump_json(rows, indent=2) + b"\n")
    console.print(table(rows))
    console.print(f"summary: {out / 'summary.json'}")
    return rows


def table(rows: list[SummaryRow]) -> Table:
    t = Table(title="posttrainbench demo: arith x ptb-tiny", header_style="bold")
    for col in ("agent", "status", "base", "final", "flagged", "counted", "minutes"):
        t.add_column(col, justify="left" if col in ("agent", "status") else "right")
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    for r in rows:
        t.add_row(
            r.agent, r.status, pct(r.base_score), pct(r.final_score),
            "[red]yes[/]" if r.flagged else "no", pct(r.counted_score),
            "-" if r.minutes_used is None else f"{r.minutes_used:.1f}",
        )  # fmt: skip
    return t
