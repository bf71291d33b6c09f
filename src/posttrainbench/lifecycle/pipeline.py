"""Run every stage of one run in order. A failing stage is recorded and the remaining stages
still run, so a run always ends with a complete `run.json`, never a lost directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from posttrainbench.lifecycle.check import check
from posttrainbench.lifecycle.collect import collect
from posttrainbench.lifecycle.evaluate import evaluate
from posttrainbench.lifecycle.judge import judge
from posttrainbench.lifecycle.prepare import prepare
from posttrainbench.lifecycle.record import record
from posttrainbench.lifecycle.solve import solve
from posttrainbench.monitor import Monitor
from posttrainbench.rundir import RunDir
from posttrainbench.sandbox import gpus
from posttrainbench.specs import RunRecord, RunSpec, clock


def run_stage(run: RunDir, name: str, fn: Callable[[], object], console: Console) -> bool:
    try:
        fn()
    except Exception as e:
        console.print(f"  [red]✗ {name} failed:[/] {type(e).__name__}: {e}", highlight=False)
        return False
    t = run.load().stages.get(name)
    console.print(f"  [green]✓[/] {name} [dim]({t.seconds:.1f}s)[/]" if t else f"  ✓ {name}")
    return True


def _allotted(count: int) -> list[int]:
    try:
        return gpus.allot(count)
    except ValueError:
        return []  # solve reports it; the monitor just has no GPU columns


def execute(run: RunDir, console: Console) -> RunRecord:
    """solve -> collect -> check -> judge -> evaluate -> record on a prepared run directory, with
    resource samples in monitor.csv."""
    spec = run.load().spec
    monitor = Monitor(run.path / "monitor.csv", spec.monitor_seconds, _allotted(spec.gpus))
    monitor.stage("solve")
    with monitor, console.status(f"solve: agent {spec.agent} is working") as status:

        def progress(left: float) -> None:
            status.update(f"solve: agent [bold]{spec.agent}[/] is working, {clock(left)} left")

        run_stage(run, "solve", lambda: solve(run, progress), console)
        after = [("collect", collect), ("check", check)] + [("judge", judge)] * bool(spec.integrity_judges)
        for name, fn in after:
            monitor.stage(name)
            run_stage(run, name, lambda fn=fn: fn(run), console)
        monitor.stage("evaluate")
        status.update("evaluate: scoring final_model on the full test set")
        run_stage(run, "evaluate", lambda: evaluate(run), console)
    run_stage(run, "record", lambda: record(run), console)
    return run.load()


def run_one(spec: RunSpec, results_root: Path, console: Console) -> tuple[RunDir, RunRecord]:
    run = prepare(spec, results_root)
    console.print(f"[bold]run[/] {run.path}")
    console.print("  [green]✓[/] prepare")
    return run, execute(run, console)
