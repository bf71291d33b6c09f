"""`ptb config show` and `ptb doctor`. Light to import: the checks load what they need when they run."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from posttrainbench.provision import config

console = Console()
STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}

config_app = typer.Typer(
    help="The configuration: paths and credentials from the environment, ./.env and the ptb.toml files "
    "(docs/configuration.md).",
    no_args_is_help=True,
)


class Entry(BaseModel):
    key: str  # as in ptb.toml: paths.results, credentials.OPENAI_API_KEY
    variable: str
    value: str | None  # a credential masked; None: not set
    source: config.Source | None
    file: Path | None


class Shown(BaseModel):
    """What `ptb config show --json` prints."""

    files: dict[str, Path | None]  # .env, project ptb.toml, user ptb.toml: those found
    settings: list[Entry]


@config_app.command("show")
def show(json_: Annotated[bool, typer.Option("--json", help="print it as JSON")] = False) -> None:
    """Print the effective configuration, each value with where it came from (highest first: environment,
    ./.env, the project's ptb.toml, the user's ptb.toml, the defaults). Secrets are masked."""
    cwd = Path.cwd()
    cfg = config.load(cwd)
    files = {
        ".env": cwd / ".env" if (cwd / ".env").is_file() else None,
        "project ptb.toml": config.project_file(cwd),
        "user ptb.toml": config.user_file() if config.user_file().is_file() else None,
    }
    values: dict[str, tuple[str, str | None]] = {  # key -> (variable, value)
        f"paths.{key}": (var, str(getattr(cfg.paths, key))) for key, var in config.PATH_ENV.items()
    }
    for var in config.CREDENTIALS:
        secret = cfg.credentials.get(var)
        values[f"credentials.{var}"] = (var, config.mask(secret.get_secret_value()) if secret else None)
    entries = []
    for key, (var, value) in values.items():
        origin = cfg.origins.get(key)
        source, file = (origin.source, origin.file) if origin else (None, None)
        entries.append(Entry(key=key, variable=var, value=value, source=source, file=file))
    if json_:
        typer.echo(Shown(files=files, settings=entries).model_dump_json(indent=2))
        return
    for what, path in files.items():  # the sources in the table's "from" column
        console.print(f"{what}: {escape(str(path)) if path else '[dim]none[/]'}", highlight=False)
    table = Table(box=None, header_style="bold")
    for col in ("key", "variable", "value", "from"):
        table.add_column(col, overflow="fold")
    for e in entries:
        table.add_row(e.key, e.variable, escape(e.value) if e.value else "[dim]not set[/]", e.source or "")
    console.print(table)


def doctor(
    experiment: Annotated[
        Path | None,
        typer.Option(help="check for this experiment's runs: agents, judges, GPUs, sandbox, backend, models"),
    ] = None,
    agent: Annotated[
        list[str] | None,
        typer.Option("--agent", help="an agent to be run (repeatable): install, credentials"),
    ] = None,
    judge: Annotated[
        list[str] | None,
        typer.Option(
            "--judge", help="a judge to be used (repeatable): openai/MODEL, cli:AGENT:MODEL, ...: its key"
        ),
    ] = None,
    gpus: Annotated[
        int | None,
        typer.Option(
            min=0, help="GPUs the runs need here (default: as many as the experiment asks, else none)"
        ),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="print the checks as JSON")] = False,
) -> None:
    """Check what a run needs on this machine - GPUs and driver, CUDA, free disk, the sandbox, the scheduler,
    the CLI agents, credentials, the model cache - and say what to do about each miss. Exits 0 when nothing
    failed (warnings allowed), 1 otherwise."""
    from posttrainbench.provision import doctor as checks

    need = checks.needs(experiment, agent or [], judge or [], gpus)
    with contextlib.nullcontext() if json_ else console.status("checking"):
        report = checks.run(need)
    if json_:
        typer.echo(report.model_dump_json(indent=2))
    else:
        table = Table(box=None, header_style="bold")
        for col in ("check", "status", "detail", "fix"):
            table.add_column(col, overflow="fold")
        for c in report.checks:
            table.add_row(c.name, f"[{STYLE[c.status]}]{c.status}[/]", escape(c.detail), escape(c.fix))
        console.print(table)
        failed = sum(c.status == "fail" for c in report.checks)
        console.print(
            "[green]ready[/]" if report.ready else f"[bold red]not ready[/]: {failed} check(s) failed"
        )
    raise typer.Exit(0 if report.ready else 1)
