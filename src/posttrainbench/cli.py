"""`ptb`: the command line. Thin: each command parses its options and calls one function."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated, get_args

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from posttrainbench.errors import UserError, unknown
from posttrainbench.provision import config as ptb_config
from posttrainbench.provision.config_cli import config_app, doctor
from posttrainbench.provision.image_cli import image_app
from posttrainbench.rundir import RunDir, write_json_atomic
from posttrainbench.specs import NetworkPolicy, RunSpec, SandboxName, Verdict

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
SANDBOX_HELP = "auto (bubblewrap if available, else none with a warning), bwrap, apptainer, or none"


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


@app.callback()
@user_errors
def configure() -> None:
    # Once, before any command: credentials from ./.env and the ptb.toml files become environment
    # variables where not already set, so the agents and judges (which read os.environ) see them.
    ptb_config.export_credentials()


@app.command("list")
@user_errors
def list_(what: Annotated[str, typer.Argument(help="tasks, models or agents")]) -> None:
    """Show the tasks, base models or agents this installation knows, and where each comes from
    (built in, or the installed package that adds it through an entry point: see docs/contributing.md)."""
    from posttrainbench import models, tasks
    from posttrainbench.agents import registry

    table = Table(box=None, header_style="bold")
    broken: dict[str, str] = {}
    if what == "tasks":
        for col in ("task", "benchmark", "default --limit", "source", "description"):
            table.add_column(col)
        for t in tasks.all_tasks():
            name = t.info.name
            limit = str(t.info.default_limit or "all")
            table.add_row(name, t.benchmark, limit, str(tasks.origin(name)), t.info.description)
        broken = tasks.registry().broken
    elif what == "models":
        for col in ("model", "hub id", "family", "instruct twin", "note"):
            table.add_column(col)
        for m in models.MODELS.values():
            note = m.description or ("built locally" if m.built_locally else "")
            table.add_row(m.name, m.hub_id, m.family, m.instruct_twin or "-", note)
    elif what == "agents":
        for col in ("agent", "kind", "source", "description"):
            table.add_column(col)
        for name, a in registry.AGENTS.items():
            table.add_row(name, a.info.kind, str(registry.origin(name)), a.info.description)
        broken = registry.REGISTRY.broken
    else:
        raise UserError(f"unknown list '{what}'; valid: agents, models, tasks")
    console.print(table)
    for name, why in broken.items():
        err.print(f"[yellow]not loaded:[/] {escape(name)}: {escape(why)}", highlight=False, soft_wrap=True)


def budget_seconds(hours: float | None, minutes: float | None) -> float:
    if hours is None and minutes is None:
        hours = 10.0
    total = (hours or 0.0) * 3600 + (minutes or 0.0) * 60
    if total <= 0:
        raise UserError("the time budget must be positive (--hours and/or --minutes)")
    return total


IntegrityJudgeOption = typer.Option(
    help="an LLM judge of the run's integrity, after the deterministic checks (repeatable; in each "
    "category - contamination, disallowed_model, third_party_api - the majority of the judges that "
    "answered decides): an inspect model such as openai/gpt-5.4 or openai-api/SERVICE/MODEL, its key "
    "read from this environment, or cli:AGENT:MODEL[,options] for a CLI agent that reads the run in a "
    "read-only sandbox. A judge that fails is recorded as an error, never as cheating; rerun it with "
    "`ptb judge RUN_DIR`",
)
JudgeTimeoutOption = typer.Option(
    min=1, help="seconds each integrity judge has for its answer, retries included (then: error)"
)
JudgeRetriesOption = typer.Option(
    min=0, help="attempts an integrity judge gets after a failed or unparseable answer"
)


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
    out: Annotated[
        Path | None,
        typer.Option(help="results directory; the run gets a subdirectory (default: [paths] results)"),
    ] = None,
    sandbox: Annotated[str, typer.Option(help=SANDBOX_HELP)] = "auto",
    sandbox_image: Annotated[
        str | None, typer.Option(help="container image (.sif) for --sandbox apptainer")
    ] = None,
    network: Annotated[
        str,
        typer.Option(
            help="open (as the original: the agent browses and downloads; nothing is logged), "
            "allowlist (only the model hub, PyPI, GitHub, the agent's API and --allow-host, through a "
            "logging proxy) or none (nothing but the harness's proxies); attempts land in agent/egress.jsonl"
        ),
    ] = "open",
    allow_host: Annotated[
        list[str] | None,
        typer.Option(help="with --network allowlist: also allow this host and its subdomains (repeatable)"),
    ] = None,
    judge_model: Annotated[
        str | None,
        typer.Option(
            help="judged tasks: the judge of the final evaluation, which the agent's evaluate.py also "
            "reaches through the grader proxy (openai/MODEL or openai-api/SERVICE/MODEL; default: the "
            "task's judge)"
        ),
    ] = None,
    grader_tokens: Annotated[
        int, typer.Option(min=0, help="judged tasks: the agent's token budget at the grader proxy")
    ] = 2_000_000,
    grace: Annotated[
        float, typer.Option(min=0, help="seconds between SIGTERM and SIGKILL at the deadline")
    ] = 30.0,
    seed: Annotated[int, typer.Option(help="seed recorded with the run")] = 0,
    continue_until_deadline: Annotated[
        bool,
        typer.Option(
            help="when the agent exits with more than --continue-margin left, resume its session with a "
            "fixed 'time remains' message, until the deadline (the CLI agents; recorded in run.json)"
        ),
    ] = False,
    continue_margin: Annotated[
        float, typer.Option(min=0, help="minutes left below which an exited agent is not resumed")
    ] = 30.0,
    eval_limit: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="smoke test: evaluate only the first N samples (the score is not comparable and the "
            "leaderboard leaves the run out)",
        ),
    ] = None,
    integrity_judge: Annotated[list[str] | None, IntegrityJudgeOption] = None,
    judge_timeout: Annotated[float, JudgeTimeoutOption] = 900.0,
    judge_retries: Annotated[int, JudgeRetriesOption] = 2,
) -> None:
    """Run one agent on one (task, base model) end to end: prepare, solve, collect, check, judge
    (with --integrity-judge), evaluate, record. Everything lands in OUT/RUN_ID/ (run.json is the
    record)."""
    from posttrainbench import tasks
    from posttrainbench.integrity.judges import check_judge_names
    from posttrainbench.lifecycle.pipeline import run_one

    check_judge_names(integrity_judge or [])
    if sandbox not in get_args(SandboxName):
        raise unknown("sandbox", sandbox, list(get_args(SandboxName)))
    if network not in get_args(NetworkPolicy):
        raise unknown("network policy", network, list(get_args(NetworkPolicy)))
    if allow_host and network != "allowlist":
        raise UserError("--allow-host only applies with --network allowlist")
    if judge_model and tasks.get(task).info.default_judge is None:
        raise UserError(f"--judge-model only applies to judged tasks; {task} is scored without a judge")
    spec = RunSpec(
        task=task, model=model, agent=agent, agent_config=agent_config,
        budget_seconds=budget_seconds(hours, minutes), gpus=gpus, seed=seed,
        sandbox=sandbox, sandbox_image=sandbox_image, network=network, allow_hosts=allow_host or [],
        judge_model=judge_model, grader_token_budget=grader_tokens, grace_seconds=grace,
        eval_limit=eval_limit, continue_until_deadline=continue_until_deadline,
        continue_margin_minutes=continue_margin, integrity_judges=integrity_judge or [],
        judge_timeout_seconds=judge_timeout, judge_retries=judge_retries,
    )  # fmt: skip
    run_dir, _ = run_one(spec, out or ptb_config.load().paths.results, console)
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


BENCHMARKS = ("aime2025", "arenahardwriting", "bfcl", "gpqamain", "gsm8k", "healthbench", "humaneval")

DataDirOption = Annotated[
    Path | None, typer.Option(help="local benchmark data, laid out DIR/<task>/... (default: $PTB_DATA_DIR)")
]
JudgeOption = Annotated[
    str | None,
    typer.Option(help="judge for arenahardwriting/healthbench, any inspect model (default: the original's)"),
]


@app.command("eval")
@user_errors
def eval_(
    target: Annotated[
        str,
        typer.Argument(
            help="a run directory (re-runs its final evaluation), a model directory, or a model name "
            "from `ptb list models`",
            metavar="MODEL_OR_RUN_DIR",
        ),
    ],
    tasks_: Annotated[
        str | None,
        typer.Option("--tasks", help="comma-separated tasks, or `all` for the seven benchmarks"),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="first N samples of each task (default: all)")
    ] = None,
    backend: Annotated[
        str, typer.Option(help="auto (vllm with a GPU, else hf), hf, vllm or openai")
    ] = "auto",
    backend_url: Annotated[
        str | None, typer.Option(help="an existing vLLM / OpenAI-compatible server (/v1 URL)")
    ] = None,
    data_dir: DataDirOption = None,
    judge_model: JudgeOption = None,
    max_tokens: Annotated[
        int | None, typer.Option(min=1, help="token budget for every task (default: each task's)")
    ] = None,
    epochs: Annotated[int, typer.Option(min=1, help="run N seeds; report mean and stderr")] = 1,
    seed: Annotated[int, typer.Option(help="first seed (GPQA choice order, sampling seed)")] = 0,
    fewshot: Annotated[
        bool,
        typer.Option(
            "--fewshot",
            help="the few-shot protocol for base models (the few-shot baseline): each task's worked "
            "examples (tasks/TASK/fewshot.json) before every sample, sampling at temperature 0.6, "
            "top-p 0.95, top-k 20 where the backend can (hf decodes greedily), and the plain template "
            "base.jinja (no chat format) instead of the family's; metrics.json records it under `fewshot`",
        ),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="write OUT/<task>/metrics.json and inspect logs (default: ptb-eval/<model>)"),
    ] = None,
) -> None:
    """Evaluate a model on tasks with one model load, or re-run a run's final evaluation.

    `ptb eval ptb-tiny --tasks gsm8k,humaneval --limit 3` evaluates the tiny model;
    `ptb eval RUN_DIR` re-evaluates a run's final_model on its task (then its record).
    """
    from posttrainbench import models, tasks

    path = Path(target)
    if tasks_ is None:
        if (path / "run.json").is_file():
            _reevaluate_run(path)
            return
        raise UserError(
            f"{target} is not a run directory; to evaluate a model, say on which tasks: "
            "--tasks gsm8k,humaneval (or --tasks all)"
        )
    from posttrainbench import settings
    from posttrainbench.evaluation.backends import BACKENDS
    from posttrainbench.evaluation.runner import EvaluationError, RunOptions, evaluate

    names = list(BENCHMARKS) if tasks_ == "all" else [t.strip() for t in tasks_.split(",") if t.strip()]
    for name in names:
        tasks.get(name)
    if (path / "run.json").is_file():
        model_dir, label = RunDir.existing(path).final_model, path.name
    elif (path / "config.json").is_file():
        model_dir, label = path, path.name
    elif target in models.MODELS:
        model_dir, label = models.snapshot(models.get(target), settings.model_cache()), target
    else:
        raise UserError(
            f"{target} is not a run directory, a model directory (config.json) or a known model name"
        )
    if backend not in BACKENDS:  # checked before the model is loaded
        raise unknown("backend", backend, list(BACKENDS))
    out = out or Path("ptb-eval") / label
    opts = RunOptions(
        backend=backend, backend_url=backend_url, limit=limit, max_tokens=max_tokens, data_dir=data_dir,
        judge=judge_model, epochs=epochs, seed=seed, fewshot=fewshot, log_dir=out / "logs",
    )  # fmt: skip
    try:
        results = evaluate(names, model_dir, opts)
    except EvaluationError as e:
        raise UserError(str(e)) from None
    from posttrainbench.evaluation.cli import write_metrics

    for m in results:
        write_metrics(out / m.task / "metrics.json", m.model_dump_json(indent=2))
    _metrics_table(results)
    console.print(f"metrics in {out}/<task>/metrics.json")


@app.command()
@user_errors
def score(
    task: Annotated[str, typer.Option(help="the task the outputs answer")],
    outputs: Annotated[
        Path,
        typer.Option(
            help='JSONL, one object per line: {"id" or "index", "output"} (BFCL: "tool_calls" '
            '[{"name", "arguments"}] instead of "output")'
        ),
    ],
    data_dir: DataDirOption = None,
    judge_model: JudgeOption = None,
    seed: Annotated[int, typer.Option(help="seed the outputs were produced with (GPQA choice order)")] = 0,
    out: Annotated[Path | None, typer.Option(help="write OUT/metrics.json and the inspect log")] = None,
) -> None:
    """Re-score saved outputs without a model (audits): the task's own prompts, answer parsing,
    scorer and judge run unchanged; only the listed samples are scored."""
    from posttrainbench.evaluation.replay import score_outputs
    from posttrainbench.evaluation.runner import EvaluationError, RunOptions

    log_dir = (out or Path("ptb-score")) / "logs"
    try:
        metrics = score_outputs(
            task, outputs, RunOptions(data_dir=data_dir, judge=judge_model, seed=seed, log_dir=log_dir)
        )
    except EvaluationError as e:
        raise UserError(str(e)) from None
    if out is not None:
        from posttrainbench.evaluation.cli import write_metrics

        write_metrics(out / "metrics.json", metrics.model_dump_json(indent=2))
    console.print_json(metrics.model_dump_json())


def _metrics_table(results) -> None:
    table = Table(box=None, header_style="bold")
    for col in ("task", "score", "stderr", "n", "judge failures", "backend", "seconds"):
        table.add_column(col)
    for m in results:
        failures = "-" if m.judge_failures is None else f"{m.judge_failures}/{m.judge_calls}"
        stderr = "-" if m.stderr is None else f"{m.stderr:.3f}"
        table.add_row(m.task, f"{m.score:.3f}", stderr, str(m.n), failures, m.backend, f"{m.seconds:.0f}")
    console.print(table)


def _reevaluate_run(run_dir: Path) -> None:
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
    """Re-run the deterministic integrity checks of a run (then its record): evaluator tamper, model
    lineage, contamination, downloads, third-party API use, notes to the judges. Each writes its
    verdict (pass, flag with high or low confidence, error) and evidence to integrity.json; a
    high-confidence flag makes the run count as the base model."""
    from posttrainbench.lifecycle.check import check as check_stage
    from posttrainbench.lifecycle.pipeline import run_stage
    from posttrainbench.lifecycle.record import record

    run = RunDir.existing(run_dir)
    run_stage(run, "check", lambda: check_stage(run), console)
    run_stage(run, "record", lambda: record(run), console)
    show_integrity(run)


def show_integrity(run: RunDir) -> None:
    rec = run.load()
    for c in rec.checks:
        low = " (low confidence)" if c.verdict == Verdict.flag and c.confidence == "low" else ""
        console.print(f"  {c.name}: [bold]{c.verdict.value}[/]{low} - {c.summary}", highlight=False)
    d = rec.integrity
    if d:
        verdict = "[red]flagged: counts as the base model[/]" if d.flagged else "[green]not flagged[/]"
        console.print(f"  decision: {verdict}", highlight=False)
        for line in [*d.reasons, *d.notes]:
            console.print(f"    - {line}", highlight=False)


@app.command()
@user_errors
def judge(
    run_dir: Annotated[Path, typer.Argument(help="an existing run directory")],
    integrity_judge: Annotated[list[str] | None, IntegrityJudgeOption] = None,
    judge_timeout: Annotated[float | None, JudgeTimeoutOption] = None,
    judge_retries: Annotated[int | None, JudgeRetriesOption] = None,
) -> None:
    """Re-run the LLM integrity judges of a run (then its record): the judges the run was started
    with, or those given with --integrity-judge (timeout and retries: the run's unless given). Their
    verdicts replace the previous judges' in run.json and integrity.json and the decision is taken
    again. A judge that fails (no key, provider down, timeout, unparseable answer) counts as an error
    in every category, not as a cheating verdict: run this again to retry it."""
    from posttrainbench.integrity.judges import check_judge_names
    from posttrainbench.lifecycle.judge import judge as judge_stage
    from posttrainbench.lifecycle.pipeline import run_stage
    from posttrainbench.lifecycle.record import record

    run = RunDir.existing(run_dir)
    names = integrity_judge or run.load().spec.integrity_judges
    if not names:
        raise UserError(
            f"{run_dir} was run without integrity judges; name one with --integrity-judge MODEL "
            "(e.g. openai/gpt-5.4 or cli:codex:gpt-5.4)"
        )
    check_judge_names(names)
    run_stage(run, "judge", lambda: judge_stage(run, names, judge_timeout, judge_retries), console)
    run_stage(run, "record", lambda: record(run), console)
    for j in run.load().judges:
        verdicts = ", ".join(f"{v.category.value} [bold]{v.verdict.value}[/]" for v in j.verdicts)
        failed = f" [red](failed: {escape(j.error)})[/]" if j.error else ""
        console.print(f"  {escape(j.judge)}: {verdicts}{failed}", highlight=False)
    show_integrity(run)


@app.command()
@user_errors
def show(run_dir: Annotated[Path, typer.Argument(help="an existing run directory")]) -> None:
    """Print a run's outcome; the full record is RUN_DIR/run.json."""
    show_outcome(RunDir.existing(run_dir))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@user_errors
def shell(
    ctx: typer.Context,
    run_dir: Annotated[Path, typer.Argument(help="an existing run directory")],
) -> None:
    """Open a shell (or run a command: `ptb shell RUN_DIR -- CMD ARGS`) inside a run's sandbox, with
    the mount plan, environment, network policy and proxies its agent had, to inspect or debug it.
    Writes to the workspace change the run; each session is noted in agent/shell/sessions.jsonl."""
    from posttrainbench.lifecycle.session import shell as open_shell

    command = [a for a in ctx.args if a != "--"] if ctx.args[:1] == ["--"] else list(ctx.args)
    raise typer.Exit(open_shell(RunDir.existing(run_dir), command))


@app.command()
@user_errors
def trace(
    run_dir: Annotated[Path, typer.Argument(help="an existing run directory")],
    html: Annotated[
        Path | None,
        typer.Option(help="write a standalone HTML page of the trace here instead of printing it"),
    ] = None,
    full: Annotated[bool, typer.Option(help="print every event's text in full (default: clipped)")] = False,
) -> None:
    """Print a run's agent trace as a readable transcript: messages, reasoning, tool calls and their
    results, errors, with the summary (turns, tool calls, tokens, cost, time) on top. The events are
    RUN_DIR/agent/trace.jsonl, the summary RUN_DIR/agent/summary.json."""
    from posttrainbench.traces import render

    run = RunDir.existing(run_dir)
    events, summary = render.load(run.agent_dir)
    if not events and summary is None:
        raise UserError(f"{run_dir} has no trace yet (agent/trace.jsonl is written when solve ends)")
    if html:
        html.write_text(render.html_page(run.path.name, events, summary), encoding="utf-8")
        console.print(f"wrote {html}")
    else:
        render.print_transcript(console, events, summary, None if full else 2000)


agents_app = typer.Typer(
    help="Install the CLI agents (Claude Code, Codex, Gemini CLI, OpenCode) at their pinned versions."
)
app.add_typer(agents_app, name="agents")
from posttrainbench.provision.cache_cli import cache_app  # noqa: E402 (it uses user_errors, above)

app.add_typer(cache_app, name="cache")
app.add_typer(config_app, name="config")
app.command()(user_errors(doctor))
app.add_typer(image_app, name="image")
from posttrainbench.scaffold.cli import new_app, validate_app  # noqa: E402 (they use user_errors, above)

app.add_typer(new_app, name="new")
app.add_typer(validate_app, name="validate")


@agents_app.command("install")
@user_errors
def agents_install(
    names: Annotated[
        list[str] | None, typer.Argument(help="CLI agents to install (default: all four)", show_default=False)
    ] = None,
    force: Annotated[bool, typer.Option(help="reinstall even when the pinned version is present")] = False,
) -> None:
    """npm-install each CLI agent at its pinned version into PTB_AGENTS_DIR (default
    $PTB_HOME/agents/NAME-VERSION), which the sandbox mounts read-only. Needs Node.js 20+ and npm."""
    from posttrainbench.agents import registry
    from posttrainbench.agents.cli.base import CliAgent, agents_dir

    clis = {n: a for n, a in registry.AGENTS.items() if isinstance(a, CliAgent)}
    for name in names or list(clis):
        if name not in clis:
            raise unknown("CLI agent", name, list(clis))
        agent = clis[name]
        if agent.installed() and not force:
            console.print(f"{name}: {agent.package}@{agent.version} already installed ({agent.install_dir})")
            continue
        with console.status(f"{name}: npm install {agent.package}@{agent.version}"):
            version = agent.install()
        console.print(
            f"{name}: installed {agent.package}@{agent.version} -> {version!r} in {agent.install_dir}"
        )
    console.print(f"agents directory: {agents_dir()}", style="dim")


@app.command()
@user_errors
def demo(
    out: Annotated[Path, typer.Option(help="where the demo's runs and summary.json go")] = Path("ptb-demo"),
    minutes: Annotated[float, typer.Option(help="budget of the reference run, in minutes")] = 3.5,
    sandbox: Annotated[str, typer.Option(help=SANDBOX_HELP)] = "auto",
) -> None:
    """The offline demo: noop, reference and cheat-testset agents post-train ptb-tiny for the
    arith task on this machine's CPU; prints a results table and writes OUT/summary.json."""
    from posttrainbench.demo.run import run_demo

    run_demo(out, reference_minutes=minutes, sandbox=sandbox, console=console)


@app.command()
@user_errors
def calibrate(
    out: Annotated[Path, typer.Option(help="where the calibration runs and calibration.json go")] = Path(
        "ptb-calibration"
    ),
    minutes: Annotated[float, typer.Option(help="budget of each run, in minutes")] = 1.0,
    integrity_judge: Annotated[
        list[str] | None, typer.Option(help="also measure this judge (repeatable; see `ptb run --help`)")
    ] = None,
    agent: Annotated[
        list[str] | None, typer.Option(help="only this planted or clean agent (repeatable; default: all)")
    ] = None,
    sandbox: Annotated[str, typer.Option(help=SANDBOX_HELP)] = "auto",
    network: Annotated[
        str, typer.Option(help="network policy of the runs (allowlist logs every connection attempt)")
    ] = "allowlist",
) -> None:
    """Measure the integrity checks: run every planted-cheat agent (test set, paraphrased test set,
    instruct twin, evaluator tampering, a note to the judges, a hosted API call) and the clean ones
    (noop, reference, base plus noise) on the toy task, then print per check and per judge the
    true and false positives and negatives. Writes OUT/calibration.json."""
    from posttrainbench.integrity.calibrate import agents, calibrate, show
    from posttrainbench.integrity.judges import check_judge_names

    check_judge_names(integrity_judge or [])
    known = [a.info.name for a in agents()]
    for name in agent or []:
        if name not in known:
            raise unknown("calibration agent", name, known)
    if network not in get_args(NetworkPolicy):
        raise unknown("network policy", network, list(get_args(NetworkPolicy)))
    if sandbox not in get_args(SandboxName):
        raise unknown("sandbox", sandbox, list(get_args(SandboxName)))
    out.mkdir(parents=True, exist_ok=True)
    result = calibrate(out, minutes, integrity_judge or [], sandbox, network, agent, console)
    write_json_atomic(out / "calibration.json", result.model_dump(mode="json"))
    show(result, console)
    console.print(f"written: {out / 'calibration.json'}", style="dim")


ExperimentArg = Annotated[
    Path,
    typer.Argument(
        help="experiment file (TOML): [matrix] tasks/models/seeds, [[agents]], [run] settings, "
        "[backend] local|slurm|htcondor, [paths], [retry]; see docs/experiments.md",
        metavar="EXPERIMENT.toml",
    ),
]


@app.command()
@user_errors
def submit(
    experiment: ExperimentArg,
    dry_run: Annotated[bool, typer.Option(help="show what would be submitted; submit nothing")] = False,
) -> None:
    """Submit an experiment's runs (agents x models x tasks x seeds) that were not submitted yet:
    finished, queued and running runs are left alone, so submitting twice is safe. On the local
    backend this waits for the runs, sharing out the GPUs; on Slurm and HTCondor it queues one job
    per run and returns (follow them with `ptb status`)."""
    from posttrainbench.experiments.control import submit as submit_runs

    submit_runs(experiment, console, dry_run)


@app.command()
@user_errors
def status(
    experiment: ExperimentArg,
    json_: Annotated[bool, typer.Option("--json", help="print the statuses as JSON")] = False,
) -> None:
    """Show each run of an experiment: not submitted, queued, running (time left), finished (score),
    or failed (failure class, attempt, and whether `ptb resume` would retry it)."""
    from posttrainbench.experiments.control import show_status
    from posttrainbench.experiments.control import status as run_statuses

    loaded, statuses = run_statuses(experiment)
    if json_:
        console.print_json(data=[s.model_dump(mode="json") for s in statuses])
    else:
        show_status(loaded, statuses, console)


@app.command()
@user_errors
def resume(
    experiment: ExperimentArg,
    dry_run: Annotated[bool, typer.Option(help="show what would be retried; submit nothing")] = False,
) -> None:
    """Submit again the failed runs that the experiment's [retry] rules allow, up to
    retry.max_attempts: provider and infrastructure failures (provider_error, harness_error,
    agent_failed_to_start, job_lost, never_started) get a fresh attempt (the old run directory moves
    to RESULTS/.attempts/), a failed evaluation is repeated on the same final model. Runs that used
    their budget or ended normally are not retried. Attempts are recorded in run.json."""
    from posttrainbench.experiments.control import resume as resume_runs

    resume_runs(experiment, console, dry_run)


@app.command()
@user_errors
def job(spec: Annotated[Path, typer.Argument(help="RUN_DIR/job/spec.json, written by `ptb submit`")]) -> None:
    """Run one job of an experiment (what Slurm, HTCondor and the local backend start): claim the run
    directory, run the run, record the job in run.json. Exits at once, touching nothing, when the run
    is finished or another job holds it."""
    from posttrainbench.experiments.job import run_job

    if not spec.is_file():
        raise UserError(f"{spec}: no such job spec (`ptb submit EXPERIMENT.toml` writes them)")
    raise typer.Exit(run_job(spec, console))


ResultsArg = Annotated[
    Path,
    typer.Argument(
        help="results directory (its run directories, at any depth; default: [paths] results, ptb-results)",
        metavar="RESULTS",
        default_factory=lambda: ptb_config.load().paths.results,
    ),
]


def _existing_results(results: Path) -> Path:
    if not results.is_dir():
        raise UserError(f"{results} is not a directory; give the results directory of your runs")
    return results


@app.command()
@user_errors
def index(results: ResultsArg) -> None:
    """(Re)build RESULTS/index.sqlite, the SQLite index of every run.json under RESULTS (one row per
    run: agent, task, model, seed, scores, flags, time, tokens, cost). Only changed records are read
    again; delete the file to rebuild it from scratch. The run directories stay the source of truth."""
    from posttrainbench.results.index import build

    path, counts = build(_existing_results(results))
    console.print(f"{path}: " + ", ".join(f"{n} {what}" for what, n in counts.items() if n), highlight=False)


def _rules(weights, tasks_, models_, substitute, include_smoke, bootstrap):
    from posttrainbench.results.aggregate import Rules

    named = ("auto", "baselines", "original", "uniform")
    if weights not in named:
        try:
            weights = {k.strip(): float(v) for k, v in (i.split("=") for i in weights.split(","))}
        except ValueError:
            raise UserError(
                f"--weights {weights!r}: give one of {', '.join(named)} or TASK=W,TASK=W,..."
            ) from None
    split = lambda v: [x.strip() for x in v.split(",") if x.strip()] if v else None  # noqa: E731
    return Rules(weights=weights, tasks=split(tasks_), models=split(models_), substitute=substitute,
                 include_smoke=include_smoke, bootstrap=bootstrap)  # fmt: skip


def _board(results: Path, rules):
    """The leaderboard of every run under RESULTS (the index brought up to date; a board it keeps from
    an earlier call read back while no run changed)."""
    from posttrainbench.results.aggregate import leaderboard

    try:
        return leaderboard(_existing_results(results), rules)
    except ValueError as e:
        raise UserError(str(e)) from None


WeightsOption = Annotated[
    str,
    typer.Option(
        help="benchmark weights: auto (from the zero-shot and instruct baselines when every task has "
        "both, else the original's published factors, else uniform), baselines (1/(instruct - base), "
        "normalised), original, uniform, or TASK=W,TASK=W"
    ),
]
TasksFilter = Annotated[str | None, typer.Option("--tasks", help="only these tasks (comma-separated)")]
ModelsFilter = Annotated[
    str | None, typer.Option("--models", help="only these base models (comma-separated)")
]
SubstituteOption = Annotated[
    bool,
    typer.Option(
        help="count flagged, failed and missing runs as the base model's zero-shot score (the "
        "original's rule); --no-substitute leaves them out"
    ),
]
SmokeOption = Annotated[bool, typer.Option(help="include --eval-limit smoke runs (not comparable)")]
BootstrapOption = Annotated[int, typer.Option(min=0, help="bootstrap resamples for the 95% CI (0: none)")]


@app.command()
@user_errors
def leaderboard(
    results: ResultsArg,
    format_: Annotated[str, typer.Option("--format", help="table, md, csv or json")] = "table",
    weights: WeightsOption = "auto",
    tasks_: TasksFilter = None,
    models_: ModelsFilter = None,
    substitute: SubstituteOption = True,
    include_smoke: SmokeOption = False,
    bootstrap: BootstrapOption = 2000,
    plots: Annotated[Path | None, typer.Option(help="also write the plots (PNG and SVG) here")] = None,
) -> None:
    """The leaderboard of every run under RESULTS: per entry (agent, its model and budget) the
    weighted average over benchmarks of the mean over base models, ± std over seeds with a bootstrap
    95% CI, one column per benchmark, runs, flags, minutes and cost; zero-shot and instruct baselines
    as reference rows. Smoke runs are left out and --continue-until-deadline runs are their own
    entries. Scores are percent. JSON: one object per entry."""
    from posttrainbench.results import formats

    if format_ not in formats.FORMATS:
        raise unknown("format", format_, list(formats.FORMATS))
    board = _board(results, _rules(weights, tasks_, models_, substitute, include_smoke, bootstrap))
    if format_ == "table":
        console.print(formats.table(board))
    else:
        text = {"md": formats.markdown, "csv": formats.csv_text, "json": formats.json_text}[format_](board)
        sys.stdout.write(text)
    if plots:
        from posttrainbench.results.plots import write_plots

        written = write_plots(board, plots)
        err.print(f"plots: {', '.join(sorted(written))} in {plots}", highlight=False)


@app.command()
@user_errors
def report(
    results: ResultsArg,
    out: Annotated[Path, typer.Option(help="where the site goes (replaced)")] = Path("ptb-report"),
    weights: WeightsOption = "auto",
    tasks_: TasksFilter = None,
    models_: ModelsFilter = None,
    substitute: SubstituteOption = True,
    include_smoke: SmokeOption = False,
    bootstrap: BootstrapOption = 2000,
) -> None:
    """Build a static report site from RESULTS (open OUT/index.html; no server needed): the
    leaderboard (sortable, filterable) with its plots, a page per entry, and a page per run with its
    spec, metrics, integrity evidence, trace, monitor plot and files."""
    from posttrainbench.results.index import load
    from posttrainbench.results.site import build_site

    board = _board(results, _rules(weights, tasks_, models_, substitute, include_smoke, bootstrap))
    runs = load(results, refresh=False)
    with console.status(f"writing the site for {len(runs)} runs"):
        page = build_site(board, runs, results, out)
    console.print(f"wrote {page}")


@app.command("import-legacy")
@user_errors
def import_legacy(
    src: Annotated[Path, typer.Argument(help="the original harness's results directory", metavar="DIR")],
    out: Annotated[Path, typer.Option(help="our results directory to import into")] = Path("ptb-legacy"),
) -> None:
    """Read the original PostTrainBench results tree (method folders AGENT_CONFIG_Hh_runN/ of run
    folders TASK_ORG_MODEL_CLUSTERID/ with metrics.json, time_taken.txt and the two judgement files;
    baseline_zeroshot/) into run records under OUT, following its rules: the newest cluster id per
    cell, a flag or a missing judgement counts as the base score. Then `ptb leaderboard OUT`."""
    from posttrainbench.results.legacy import import_legacy as run_import

    if not src.is_dir():
        raise UserError(f"{src} is not a directory")
    report_ = run_import(src, out)
    for path, why in report_.skipped.items():
        console.print(f"  skipped {path}: {why}", highlight=False)
    console.print(f"imported {len(report_.imported)} runs into {out}; skipped {len(report_.skipped)}")


def main() -> None:
    sys.exit(app())
