"""`ptb`: the command line. Thin: each command parses its options and calls one function."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from posttrainbench import models, tasks
from posttrainbench.agents import registry
from posttrainbench.errors import UserError
from posttrainbench.rundir import RunDir
from posttrainbench.specs import RunSpec

app = typer.Typer(
    help=(
        "posttrainbench: give an AI agent a base LLM, a benchmark and a time budget, then evaluate "
        "what it trained and check that it did not cheat.\n\n"
        "Start with `ptb demo` (offline, CPU, a few minutes), then `ptb list tasks|models|agents` "
        "and `ptb run --task T --model M --agent A`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
console = Console()
err = Console(stderr=True)


def user_errors(fn):
    """Bad input becomes one line on stderr and exit code 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


@app.command("list")
@user_errors
def list_(what: Annotated[str, typer.Argument(help="tasks, models or agents")]) -> None:
    """Show the tasks, base models or agents this installation knows."""
    table = Table(box=None, header_style="bold")
    if what == "tasks":
        for col in ("task", "benchmark", "default --limit", "description"):
            table.add_column(col)
        for t in tasks.all_tasks():
            table.add_row(t.info.name, t.benchmark, str(t.info.default_limit or "all"), t.info.description)
    elif what == "models":
        for col in ("model", "hub id", "family", "instruct twin", "note"):
            table.add_column(col)
        for m in models.MODELS.values():
            note = m.description or ("built locally" if m.built_locally else "")
            table.add_row(m.name, m.hub_id, m.family, m.instruct_twin or "-", note)
    elif what == "agents":
        for col in ("agent", "kind", "description"):
            table.add_column(col)
        for a in registry.AGENTS.values():
            table.add_row(a.info.name, a.info.kind, a.info.description)
    else:
        raise UserError(f"unknown list '{what}'; valid: agents, models, tasks")
    console.print(table)


def budget_seconds(hours: float | None, minutes: float | None) -> float:
    if hours is None and minutes is None:
        hours = 10.0
    total = (hours or 0.0) * 3600 + (minutes or 0.0) * 60
    if total <= 0:
        raise UserError("the time budget must be positive (--hours and/or --minutes)")
    return total


@app.command()
@user_errors
def run(
    task: Annotated[str, typer.Option(help="task to post-train for (`ptb list tasks`)")],
    model: Annotated[str, typer.Option(help="base model to post-train (`ptb list models`)")],
    agent: Annotated[str, typer.Option(help="agent that does the work (`ptb list agents`)")],
    agent_config: Annotated[
        str, typer.Option(help="agent configuration, e.g. its model name or script path")
    ] = "",
    hours: Annotated[
        float | None, typer.Option(help="time budget in hours (default 10 when --minutes is not given)")
    ] = None,
    minutes: Annotated[float | None, typer.Option(help="time budget in minutes (added to --hours)")] = None,
    gpus: Annotated[int, typer.Option(min=0, help="GPUs given to the agent")] = 0,
    out: Annotated[Path, typer.Option(help="results directory; the run gets a subdirectory")] = Path(
        "ptb-results"
    ),
    sandbox: Annotated[str, typer.Option(help="auto (bubblewrap if available), bwrap, or none")] = "auto",
    network: Annotated[str, typer.Option(help="open, or offline (no network in the sandbox)")] = "open",
    grace: Annotated[
        float, typer.Option(min=0, help="seconds between SIGTERM and SIGKILL at the deadline")
    ] = 30.0,
    seed: Annotated[int, typer.Option(help="seed recorded with the run")] = 0,
) -> None:
    """Run one agent on one (task, base model) end to end: prepare, solve, collect, check,
    evaluate, record. Everything lands in OUT/RUN_ID/ (run.json is the record)."""
    from posttrainbench.lifecycle.pipeline import run_one

    if sandbox not in ("auto", "bwrap", "none"):
        raise UserError(f"unknown sandbox '{sandbox}'; valid sandboxes: auto, bwrap, none")
    if network not in ("open", "offline"):
        raise UserError(f"unknown network policy '{network}'; valid: offline, open")
    spec = RunSpec(
        task=task, model=model, agent=agent, agent_config=agent_config,
        budget_seconds=budget_seconds(hours, minutes), gpus=gpus, seed=seed,
        sandbox=sandbox, network=network, grace_seconds=grace,
    )  # fmt: skip
    run_dir, _ = run_one(spec, out, console)
    show_outcome(run_dir)


def show_outcome(run_dir: RunDir) -> None:
    rec = run_dir.load()
    o = rec.outcome
    if o is None:
        console.print(f"{run_dir.path}: no outcome recorded yet")
        return
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    console.print(
        f"[bold]{rec.run_id}[/]: {o.status}"
        + (f", failure: {o.failure_class.value}" if o.failure_class else "")
        + (" [red]FLAGGED[/]" if o.flagged else "")
        + f"\n  solve: {rec.solve.end.value if rec.solve else '-'}"
        + (f" ({rec.solve.detail})" if rec.solve and rec.solve.detail else "")
        + f", final_model: {rec.final_model.state.value if rec.final_model else '-'}"
        + f"\n  base {fmt(o.base_score)}  final {fmt(o.final_score)}  counted {fmt(o.counted_score)} ({o.counted_reason})",
        highlight=False,
    )


@app.command("eval")
@user_errors
def eval_(run_dir: Annotated[Path, typer.Argument(help="an existing run directory")]) -> None:
    """Re-run the final evaluation of a run (then its record)."""
    from posttrainbench.lifecycle.evaluate import evaluate
    from posttrainbench.lifecycle.pipeline import run_stage
    from posttrainbench.lifecycle.record import record

    run = RunDir.existing(run_dir)
    ok = run_stage(run, "evaluate", lambda: evaluate(run), console)
    run_stage(run, "record", lambda: record(run), console)
    show_outcome(run)
    if not ok:
        raise typer.Exit(1)


@app.command()
@user_errors
def check(run_dir: Annotated[Path, typer.Argument(help="an existing run directory")]) -> None:
    """Re-run the integrity checks of a run (then its record); writes integrity.json."""
    from posttrainbench.lifecycle.check import check as check_stage
    from posttrainbench.lifecycle.pipeline import run_stage
    from posttrainbench.lifecycle.record import record

    run = RunDir.existing(run_dir)
    run_stage(run, "check", lambda: check_stage(run), console)
    run_stage(run, "record", lambda: record(run), console)
    for c in run.load().checks:
        console.print(f"  {c.name}: [bold]{c.verdict.value}[/] - {c.summary}", highlight=False)


@app.command()
@user_errors
def show(run_dir: Annotated[Path, typer.Argument(help="an existing run directory")]) -> None:
    """Print a run's outcome; the full record is RUN_DIR/run.json."""
    show_outcome(RunDir.existing(run_dir))


@app.command()
@user_errors
def demo(
    out: Annotated[Path, typer.Option(help="where the demo's runs and summary.json go")] = Path("ptb-demo"),
    minutes: Annotated[float, typer.Option(help="budget of the reference run, in minutes")] = 3.5,
    sandbox: Annotated[str, typer.Option(help="auto (bubblewrap if available), bwrap, or none")] = "auto",
) -> None:
    """The offline demo: noop, reference and cheat-testset agents post-train ptb-tiny for the
    arith task on this machine's CPU; prints a results table and writes OUT/summary.json."""
    from posttrainbench.demo.run import run_demo

    run_demo(out, reference_minutes=minutes, sandbox=sandbox, console=console)


def main() -> None:
    sys.exit(app())
