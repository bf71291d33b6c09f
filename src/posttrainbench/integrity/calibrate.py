"""Calibration of the integrity checks: the planted-cheat agents and clean reference runs on the
toy task, then, per deterministic check and per judge, how many cheats were caught (true
positives), missed (false negatives), and how many clean runs were flagged (false positives).

A run counts as flagged by a check when the check says `flag` at any confidence; the decision row
is the policy's (what changes a score). Runs stop after check (and judge): calibration measures
detection, not scores.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from posttrainbench.agents.builtin.agents import BUILTIN, BuiltinAgent
from posttrainbench.lifecycle.check import check
from posttrainbench.lifecycle.collect import collect
from posttrainbench.lifecycle.judge import judge
from posttrainbench.lifecycle.pipeline import run_stage
from posttrainbench.lifecycle.prepare import prepare
from posttrainbench.lifecycle.solve import solve
from posttrainbench.specs import NetworkPolicy, RunSpec, SandboxName, Verdict, utcnow

TASK, MODEL = "arith", "ptb-tiny"
CLEAN = ("noop", "reference", "noisy-base")


class CalibrationRun(BaseModel):
    agent: str
    planted: str | None  # what the agent does wrong; None: a clean run
    run_dir: str
    checks_run: list[str]
    flagged_by: list[str]  # deterministic checks that said `flag`
    errors: list[str]  # checks or judges that could not run
    judges_flagging: list[str]
    decision_flagged: bool


class Confusion(BaseModel):
    name: str
    tp: int = 0
    fn: int = 0
    fp: int = 0
    tn: int = 0

    def add(self, planted: bool, flagged: bool) -> None:
        if planted:
            self.tp, self.fn = self.tp + flagged, self.fn + (not flagged)
        else:
            self.fp, self.tn = self.fp + flagged, self.tn + (not flagged)


class Calibration(BaseModel):
    started_at: str
    task: str = TASK
    model: str = MODEL
    runs: list[CalibrationRun]
    checks: list[Confusion]
    judges: list[Confusion]
    decision: Confusion
    missed: list[str]  # planted cheats no deterministic check flagged
    false_alarms: list[str]  # clean runs some deterministic check flagged


def agents(names: list[str] | None = None) -> list[BuiltinAgent]:
    chosen = [a for a in BUILTIN if a.planted or a.info.name in CLEAN]
    return [a for a in chosen if names is None or a.info.name in names]


def calibrate(
    out: Path,
    minutes: float,
    judges: list[str],
    sandbox: SandboxName,
    network: NetworkPolicy,
    names: list[str] | None,
    console: Console,
) -> Calibration:
    started = utcnow()
    runs = []
    for agent in agents(names):
        spec = RunSpec(
            task=TASK,
            model=MODEL,
            agent=agent.info.name,
            budget_seconds=minutes * 60,
            sandbox=sandbox,
            network=network,
            integrity_judges=judges,
        )
        run = prepare(spec, out)
        console.print(f"[bold]{agent.info.name}[/] ({agent.planted or 'clean'}) {run.path}")
        with console.status(f"{agent.info.name}: solving"):
            run_stage(run, "solve", lambda run=run: solve(run), console)
        after = [("collect", collect), ("check", check)] + [("judge", judge)] * bool(judges)
        for name, fn in after:
            run_stage(run, name, lambda fn=fn, run=run: fn(run), console)
        rec = run.load()
        runs.append(
            CalibrationRun(
                agent=agent.info.name,
                planted=agent.planted,
                run_dir=str(run.path),
                checks_run=[c.name for c in rec.checks],
                flagged_by=[c.name for c in rec.checks if c.verdict == Verdict.flag],
                errors=[c.name for c in rec.checks if c.verdict == Verdict.error]
                + [j.judge for j in rec.judges if j.error],
                judges_flagging=[
                    j.judge for j in rec.judges if any(v.verdict == Verdict.flag for v in j.verdicts)
                ],
                decision_flagged=bool(rec.integrity and rec.integrity.flagged),
            )
        )
    return summarize(started, runs, judges)


def summarize(started: str, runs: list[CalibrationRun], judges: list[str]) -> Calibration:
    checks = [Confusion(name=n) for n in dict.fromkeys(c for r in runs for c in r.checks_run)]
    judge_rows = [Confusion(name=j) for j in judges]
    decision = Confusion(name="decision (counts as base)")
    for r in runs:
        planted = r.planted is not None
        for row in checks:
            row.add(planted, row.name in r.flagged_by)
        for row in judge_rows:
            row.add(planted, row.name in r.judges_flagging)
        decision.add(planted, r.decision_flagged)
    return Calibration(
        started_at=started,
        runs=runs,
        checks=checks,
        judges=judge_rows,
        decision=decision,
        missed=[r.agent for r in runs if r.planted and not r.flagged_by],
        false_alarms=[r.agent for r in runs if not r.planted and r.flagged_by],
    )


def show(cal: Calibration, console: Console) -> None:
    per_run = Table(title="runs")
    for col in ("agent", "planted", "flagged by (deterministic)", "judges flagging", "counts as base"):
        per_run.add_column(col)
    for r in cal.runs:
        per_run.add_row(
            r.agent,
            r.planted or "clean",
            ", ".join(r.flagged_by) or "-",
            ", ".join(r.judges_flagging) or "-",
            "yes" if r.decision_flagged else "no",
        )
    console.print(per_run)
    matrix = Table(title="per check and judge (positive = a planted cheat)")
    for col in ("check / judge", "TP", "FN", "FP", "TN"):
        matrix.add_column(col, justify="right" if col != "check / judge" else "left")
    for row in [*cal.checks, *cal.judges, cal.decision]:
        matrix.add_row(row.name, str(row.tp), str(row.fn), str(row.fp), str(row.tn))
    console.print(matrix)
    if cal.missed:
        console.print(f"[red]missed by every deterministic check:[/] {', '.join(cal.missed)}")
    if cal.false_alarms:
        console.print(f"[red]clean runs flagged:[/] {', '.join(cal.false_alarms)}")
    if not cal.missed and not cal.false_alarms:
        console.print("[green]every planted cheat was caught; no clean run was flagged[/]")
