"""`ptb new task|agent NAME` and `ptb validate task NAME`: start a task or agent, and check a task
against the bar for joining the benchmark."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from posttrainbench.cli import console, err, user_errors
from posttrainbench.scaffold import Kind, create

new_app = typer.Typer(
    help="Create a working skeleton of a new task or agent: a small package that registers itself with "
    "posttrainbench once installed (docs/contributing.md).",
    no_args_is_help=True,
)
validate_app = typer.Typer(
    help="Check a task against the bar for joining the benchmark.", no_args_is_help=True
)

DirOption = Annotated[Path, typer.Option("--dir", help="where to create the package's folder")]
STYLE = {"pass": "green", "fail": "bold red", "skip": "yellow"}


def _new(kind: Kind, name: str, parent: Path) -> None:
    target, written = create(kind, name, parent)
    console.print(f"created {escape(str(target))} ({len(written)} files)")
    for path in written:
        console.print(f"  {escape(str(path.relative_to(target)))}", highlight=False)
    console.print(
        f"\nnext: pip install -e {escape(str(target))} && (cd {escape(str(target))} && pytest)"
        + (f" && ptb validate task {name}" if kind == "task" else ""),
        highlight=False,
    )


@new_app.command("task")
@user_errors
def new_task(
    name: Annotated[str, typer.Argument(help="the task's name, e.g. law-bench")],
    parent: DirOption = Path("."),
) -> None:
    """A task package `ptb-task-NAME/`: its inspect Task (dataset, solver, scorer), a data loader with
    example items, benchmark.txt, fewshot.json and tests (the agent's evaluate.py is generated from it)."""
    _new("task", name, parent)


@new_app.command("agent")
@user_errors
def new_agent(
    name: Annotated[str, typer.Argument(help="the agent's name, e.g. my-react")],
    parent: DirOption = Path("."),
) -> None:
    """An agent package `ptb-agent-NAME/`: the command builder, an example tool-calling loop over an
    OpenAI-compatible API, a trace parser stub, and tests against the scripted model API."""
    _new("agent", name, parent)


@validate_app.command("task")
@user_errors
def validate_task(
    name: Annotated[str, typer.Argument(help="the task's name (`ptb list tasks`)")],
    models: Annotated[
        str | None,
        typer.Option(
            help="comma-separated base models for the models check (default: the four standard ones, which "
            "need a GPU and the cache; locally built ones such as ptb-tiny run on CPU)",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="samples per model in the models check")] = 100,
    eval_hours: Annotated[float, typer.Option(min=0.01, help="the evaluation's time budget (hours)")] = 2.0,
    data_dir: Annotated[
        Path | None, typer.Option(help="local copy of the data (default: PTB_DATA_DIR, else download)")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Run the bar for a task: data pinned and loading; the scorer gives 1 to gold answers and 0 to
    wrong ones; base models low and instruct twins significantly above chance (when a GPU and the models
    are there, otherwise skipped with the reason); a full evaluation fits the time budget on the
    reference card. Exit code 1 when a check fails."""
    from posttrainbench import tasks
    from posttrainbench.tasks.validate import validate

    task = tasks.get(name)
    with err.status("validating") as status:
        result = validate(
            task,
            source=str(tasks.origin(name)),
            data_dir=data_dir,
            model_names=[m.strip() for m in models.split(",") if m.strip()] if models else None,
            limit=limit,
            eval_hours=eval_hours,
            progress=lambda check: status.update(f"validating {name}: {check}"),
        )
    if json_output:
        print(result.model_dump_json(indent=2))
    else:
        table = Table(box=None, header_style="bold", title=f"{name} ({result.source})", title_justify="left")
        for col in ("check", "result", "detail"):
            table.add_column(col)
        for c in result.checks:
            table.add_row(c.name, f"[{STYLE[c.status]}]{c.status}[/]", escape(c.detail))
            for reason in c.reasons:
                table.add_row("", "", f"[red]- {escape(reason)}[/]")
        console.print(table)
        console.print("[green]meets the bar[/]" if result.ok else "[bold red]does not meet the bar[/]")
    if not result.ok:
        raise typer.Exit(1)
