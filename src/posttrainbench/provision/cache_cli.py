"""`ptb cache pull|list`: the base models, their instruct twins and the tasks' data in the cache."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from posttrainbench.cli import console, err, user_errors

if TYPE_CHECKING:
    from posttrainbench.provision.cache import ItemStatus, Plan

cache_app = typer.Typer(
    help="Download the base models, their instruct twins and the tasks' data (`pull`); show what the "
    "cache has (`list`)."
)

ModelsOption = Annotated[
    str | None,
    typer.Option(
        "--models",
        help="comma-separated base models (their instruct twins come along; default: the four real ones)",
        show_default=False,
    ),
]
TasksOption = Annotated[
    str | None,
    typer.Option("--tasks", help="comma-separated tasks (default: the seven benchmarks)", show_default=False),
]
CacheOption = Annotated[
    Path | None,
    typer.Option("--cache", help="the model cache (default: PTB_MODEL_CACHE)", show_default=False),
]
TwinCacheOption = Annotated[
    Path | None,
    typer.Option(
        "--twin-cache", help="the instruct twins' cache (default: PTB_TWIN_CACHE)", show_default=False
    ),
]
STATE_STYLE = {"present": "green", "missing": "yellow", "partial": "yellow", "corrupt": "bold red"}


def _names(value: str | None) -> list[str] | None:
    return None if value is None else [n.strip() for n in value.split(",") if n.strip()]


@cache_app.command("pull")
@user_errors
def pull(
    models_: ModelsOption = None,
    tasks_: TasksOption = None,
    cache: CacheOption = None,
    twin_cache: TwinCacheOption = None,
    verify: Annotated[
        bool, typer.Option(help="also re-hash what is already there, and download again what fails")
    ] = False,
) -> None:
    """Download the models, twins and data not in the cache yet (resuming partial downloads), each
    file checked against the hub's or the task's hash."""
    from posttrainbench.provision import cache as cache_

    plan = cache_.plan(_names(models_), _names(tasks_), cache, twin_cache)
    try:
        with cache_.progress_bars(err) as progress:
            cache_.pull(plan, progress, verify)
    finally:
        _table(plan, cache_.status(plan))


@cache_app.command("list")
@user_errors
def list_(
    models_: ModelsOption = None,
    tasks_: TasksOption = None,
    cache: CacheOption = None,
    twin_cache: TwinCacheOption = None,
    verify: Annotated[bool, typer.Option(help="hash every file (default: model files by size)")] = False,
) -> None:
    """Show what the cache has of the models, twins and data: present, missing, partial or corrupt."""
    from posttrainbench.provision import cache as cache_

    plan = cache_.plan(_names(models_), _names(tasks_), cache, twin_cache)
    _table(plan, cache_.status(plan, verify))


def _table(plan: Plan, rows: list[ItemStatus]) -> None:
    console.print(
        f"model cache: {plan.model_cache}\ntwin cache:  {plan.twin_cache}\ndata:        {plan.data_dir}"
    )
    table = Table(box=None, header_style="bold")
    for col in ("kind", "model / task", "repository / data", "revision", "state", "detail"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.kind, r.name, r.source, r.revision, f"[{STATE_STYLE[r.state]}]{r.state}[/]", r.detail)
    console.print(table)
