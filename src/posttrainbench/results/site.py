"""`ptb report`: the leaderboard as a static site that needs no server (open index.html from disk).
Pages: index.html (the leaderboard and plots), agents/<slug>.html (one entry's cells and runs) and
runs/<slug>.html (one run: spec, outcome, metrics, integrity, judges, trace, monitor plot, files).
Everything is in the pages or next to them: no CDN, no fetch()."""

from __future__ import annotations

import hashlib
import html
import json
import re
import shutil
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from posttrainbench.errors import UserError
from posttrainbench.results import plots
from posttrainbench.results.schema import AgentRow, IndexedRun, Leaderboard
from posttrainbench.traces import render

MARKER = ".ptb-site"  # marks a directory this module wrote, so a rebuild may replace it
ASSETS = ("site.css", "site.js")
# Small files of a run directory copied next to its page; never the weights or the workspace.
RUN_FILES = (
    "run.json",
    "metrics.json",
    "integrity.json",
    "prompt.txt",
    "monitor.csv",
    "agent/summary.json",
    "agent/trace.jsonl",
    "agent/output.log",
)
MAX_COPY_BYTES = 5 * 1024 * 1024
EVIDENCE_CHARS = 20_000
TRACE_PREVIEW = 40  # trace events shown on the run page (all of them in trace.html)
EVENT_CHARS = 2_000
LOG_HEAD, LOG_TAIL, LOG_LINE_CHARS = 50, 150, 1_000


def build_site(board: Leaderboard, runs: list[IndexedRun], results: Path, out: Path) -> Path:
    """Write the site into `out` (created; earlier contents of out replaced); returns out/index.html."""
    _prepare(results, out)
    assets = resources.files("posttrainbench.results") / "site_assets"
    (out / "assets").mkdir()
    for name in ASSETS:
        (out / "assets" / name).write_text((assets / name).read_text())
    run_slugs = _slugs(r.run_id for r in runs)
    agent_slugs = _slugs(row.agent for row in board.rows)
    by_label: dict[str, list[IndexedRun]] = {}
    for r in runs:
        by_label.setdefault(r.label, []).append(r)

    (out / "runs").mkdir()
    for r in runs:
        agent_page = agent_slugs.get(r.label)
        (out / "runs" / f"{run_slugs[r.run_id]}.html").write_text(
            _run_page(r, results / r.path, out / "runs", run_slugs[r.run_id], agent_page)
        )
    (out / "agents").mkdir()
    for row in board.rows:
        page = _agent_page(board, row, by_label.get(row.agent, []), run_slugs)
        (out / "agents" / f"{agent_slugs[row.agent]}.html").write_text(page)

    figures = plots.write_plots(board, out / "plots")
    others = [r for r in runs if r.label not in agent_slugs]
    index = out / "index.html"
    index.write_text(_index_page(board, agent_slugs, figures, out, others, run_slugs))
    return index


def _prepare(results: Path, out: Path) -> None:
    out, results = out.resolve(), results.resolve()
    # The copies of run.json in the site would be indexed as runs of the results directory.
    if out == results or out.is_relative_to(results) or results.is_relative_to(out):
        raise UserError(f"write the site outside the results directory {results} (not {out})")
    if out.exists():
        if not out.is_dir():
            raise UserError(f"{out} is not a directory")
        if any(out.iterdir()) and not (out / MARKER).is_file():
            raise UserError(f"{out} is not empty and holds no site from `ptb report`; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("written by `ptb report`; rebuilding the site replaces this directory\n")


def _slugs(names: Iterable[str]) -> dict[str, str]:
    """A file name for each name: safe characters only, and distinct (a hash suffix where two collide)."""
    out: dict[str, str] = {}
    for name in dict.fromkeys(names):
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:80] or "entry"
        if slug in out.values():
            slug += "-" + hashlib.sha1(name.encode()).hexdigest()[:8]
        out[name] = slug
    return out


# --- formatting -------------------------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(str(value))


def _fmt(value: object) -> str:
    """A value as plain text (not yet escaped)."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        return _clip(json.dumps(value), 300)
    return str(value)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… [{len(text) - limit} more characters]"


def _num(value: float | None, digits: int = 1, prefix: str = "") -> str:
    """A numeric cell: right-aligned, with the exact value to sort by (empty: none, sorted last)."""
    if value is None:
        return '<td class="num" data-sort="">–</td>'
    return f'<td class="num" data-sort="{value!r}">{prefix}{value:,.{digits}f}</td>'


def _pct(fraction: float | None) -> str:
    return _num(None if fraction is None else fraction * 100)


def _th(label: str, numeric: bool = False) -> str:
    return f'<th class="num" data-type="num">{_e(label)}</th>' if numeric else f"<th>{_e(label)}</th>"


def _kv(pairs: Iterable[tuple[str, object]]) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(_fmt(v))}</td></tr>" for k, v in pairs)
    return f"<table>{rows}</table>"


def _pretty(value: object, label: str, limit: int = EVIDENCE_CHARS, where: str = "") -> str:
    """Collapsible pretty JSON, clipped where very large (`where` names the file holding all of it)."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    if len(text) > limit:
        rest = f"{len(text) - limit} more characters" + (f"; all of it in {where}" if where else "")
        text = f"{text[:limit]}\n… [{rest}]"
    return f"<details><summary>{_e(label)}</summary><pre>{_e(text)}</pre></details>"


def _verdict(v: str) -> str:
    return f'<span class="verdict-{_e(v)}">{_e(v)}</span>'


def _json_script(element_id: str, value: object) -> str:
    # `<` escaped so that no string in the data (e.g. "</script>") can end the element.
    data = json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")
    return f'<script type="application/json" id="{_e(element_id)}">{data}</script>'


def _page(title: str, body: str, depth: int, nav: str = "", data: str = "") -> str:
    root = "../" * depth
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{_e(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{root}assets/site.css">
</head><body>
<nav>{nav}</nav>
<h1>{_e(title)}</h1>
{body}
{data}
<script src="{root}assets/site.js"></script>
</body></html>
"""


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# --- index ------------------------------------------------------------------------------------------


def _index_page(
    board: Leaderboard,
    agent_slugs: dict[str, str],
    figures: dict[str, list[Path]],
    out: Path,
    others: list[IndexedRun],
    run_slugs: dict[str, str],
) -> str:
    head = (
        _th("rank", True)
        + _th("agent")
        + _th("scaffold")
        + _th("average", True)
        + "".join(_th(t, True) for t in board.tasks)
        + _th("runs", True)
        + _th("flagged", True)
        + _th("minutes", True)
        + _th("cost", True)
    )
    rows = "".join(_board_row(board, row, agent_slugs[row.agent]) for row in board.rows)
    table = (
        f'<table id="board" class="sortable"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
        if board.rows
        else '<p class="muted">No entries.</p>'
    )
    controls = (
        '<div class="controls"><input type="search" id="filter" placeholder="filter by agent or scaffold">'
        '<label><input type="checkbox" id="hide-baselines"> hide baselines</label></div>'
    )
    notes = "".join(f"<li>{_e(n)}</li>" for n in board.notes)
    left_out = "".join(f"<li>{_e(why)}: {n}</li>" for why, n in board.left_out.items())
    body = (
        controls
        + table
        + '<p class="muted">Average: weighted over benchmarks, 95% bootstrap CI in brackets. '
        "Minutes and cost: mean per run. Scores in percent.</p>"
        + (f"<h2>Notes</h2><ul>{notes}</ul>" if notes else "")
        + (f"<h2>Runs left out</h2><ul>{left_out}</ul>" if left_out else "")
        + _weights(board)
        + _plots(figures, out)
        + _other_runs(others, run_slugs)
    )
    data = _json_script("leaderboard", board.model_dump(mode="json"))
    return _page("PostTrainBench leaderboard", body, 0, data=data)


def _board_row(board: Leaderboard, row: AgentRow, slug: str) -> str:
    ci = (
        f' <span class="ci">[{row.ci_low:.1f}, {row.ci_high:.1f}]</span>'
        if row.ci_low is not None and row.ci_high is not None
        else ""
    )
    avg = (
        '<td class="num" data-sort="">–</td>'
        if row.avg is None
        else f'<td class="num" data-sort="{row.avg!r}">{row.avg:.1f}{ci}</td>'
    )
    cells = (
        _num(row.rank or None, 0)
        + f'<td><a href="agents/{_e(slug)}.html">{_e(row.agent)}</a></td>'
        + f"<td>{_e(row.scaffold)}</td>"
        + avg
        + "".join(_num(row.per_benchmark.get(t)) for t in board.tasks)
        + _num(row.runs, 0)
        + _num(row.flagged, 0)
        + _num(row.minutes)
        + _num(row.cost_usd, 2, "$")
    )
    search = _e(f"{row.agent} {row.scaffold}".lower())
    cls = ' class="baseline"' if row.baseline else ""
    return f'<tr{cls} data-search="{search}">{cells}</tr>'


def _weights(board: Leaderboard) -> str:
    head = _th("benchmark") + _th("weight", True)
    head += "".join(_th(f"{kind} {m}", True) for kind in ("zero-shot", "instruct") for m in board.models)
    rows = ""
    for t in board.tasks:
        cells = f"<td>{_e(t)}</td>" + _num(board.weights.get(t), 3)
        for scores in (board.zero_shot, board.instruct):
            cells += "".join(_num(scores.get(t, {}).get(m)) for m in board.models)
        rows += f"<tr>{cells}</tr>"
    return (
        f"<h2>Benchmark weights</h2><p>Source: <b>{_e(board.weights_source)}</b>; "
        "baseline scores in percent.</p>"
        f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
    )


def _plots(figures: dict[str, list[Path]], out: Path) -> str:
    def grid(keys: list[str]) -> str:
        items = ""
        for key in keys:
            svg = next((p for p in figures[key] if p.suffix == ".svg"), None)
            if svg is not None:
                src = _e(svg.relative_to(out).as_posix())
                items += (
                    f'<figure><a href="{src}"><img src="{src}" alt="{_e(key)}"></a>'
                    f"<figcaption>{_e(key)}</figcaption></figure>"
                )
        return f'<div class="plots">{items}</div>' if items else ""

    main = grid([k for k in figures if not k.startswith("heatmap-")])
    per_agent = grid([k for k in figures if k.startswith("heatmap-")])
    if per_agent:
        main += f"<details><summary>heatmap of each agent</summary>{per_agent}</details>"
    return f"<h2>Plots</h2>{main}" if main else ""


def _other_runs(runs: list[IndexedRun], run_slugs: dict[str, str]) -> str:
    if not runs:
        return ""
    items = "".join(
        f'<li><a href="runs/{_e(run_slugs[r.run_id])}.html">{_e(r.run_id)}</a> '
        f'<span class="muted">({_e(r.label)})</span></li>'
        for r in sorted(runs, key=lambda r: r.run_id)
    )
    return f"<h2>Runs not on the leaderboard</h2><ul>{items}</ul>"


# --- agent pages ------------------------------------------------------------------------------------


def _agent_page(board: Leaderboard, row: AgentRow, runs: list[IndexedRun], run_slugs: dict[str, str]) -> str:
    totals = _kv(
        [
            ("rank", row.rank or None),
            ("scaffold", row.scaffold),
            ("average (%)", row.avg),
            ("95% CI", None if row.ci_low is None else f"{row.ci_low:.1f} – {row.ci_high:.1f}"),
            ("std over seeds", row.std),
            ("seeds", row.seeds),
            ("runs", row.runs),
            ("flagged", row.flagged),
            ("flag rate", row.flag_rate),
            ("counted as the base model", row.substituted),
            ("missing cells", row.missing),
            ("minutes per run", row.minutes),
            ("input tokens per run", row.input_tokens),
            ("output tokens per run", row.output_tokens),
            ("cost per run (USD)", row.cost_usd),
            ("baseline", row.baseline),
        ]
    )
    head = (
        _th("benchmark") + "".join(_th(m, True) for m in board.models) + _th("mean", True) + _th("std", True)
    )
    cells = ""
    for t in board.tasks:
        per_model = row.per_cell.get(t, {})
        cells += (
            f"<tr><td>{_e(t)}</td>"
            + "".join(_num(per_model.get(m)) for m in board.models)
            + _num(row.per_benchmark.get(t))
            + _num(row.per_benchmark_std.get(t))
            + "</tr>"
        )
    grid = f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>'
    body = (
        "<h2>Totals</h2>"
        + totals
        + "<h2>Scores per benchmark and base model (percent, mean over seeds)</h2>"
        + grid
        + f"<h2>Runs ({len(runs)})</h2>"
        + _runs_table(runs, run_slugs)
    )
    return _page(row.agent, body, 1, nav='<a href="../index.html">leaderboard</a>')


def _runs_table(runs: list[IndexedRun], run_slugs: dict[str, str]) -> str:
    if not runs:
        return '<p class="muted">No runs.</p>'
    head = "".join(
        _th(label, numeric)
        for label, numeric in [
            ("run", False),
            ("task", False),
            ("model", False),
            ("seed", True),
            ("status", False),
            ("failure", False),
            ("flagged", False),
            ("base %", True),
            ("final %", True),
            ("counted %", True),
            ("minutes", True),
            ("tokens in", True),
            ("tokens out", True),
            ("cost", True),
        ]
    )
    rows = ""
    for r in sorted(runs, key=lambda r: (r.task, r.model, r.seed, r.run_id)):
        flagged = (
            f'<span class="flagged">{_e(", ".join(r.flag_reasons) or "yes")}</span>' if r.flagged else ""
        )
        rows += (
            f'<tr><td><a href="../runs/{_e(run_slugs[r.run_id])}.html">{_e(r.run_id)}</a></td>'
            f"<td>{_e(r.task)}</td><td>{_e(r.model)}</td>"
            + _num(r.seed, 0)
            + f"<td>{_e(r.status or '–')}</td><td>{_e(r.failure_class or '')}</td><td>{flagged}</td>"
            + _pct(r.base_score)
            + _pct(r.final_score)
            + _pct(r.counted_score)
            + _num(r.minutes_used)
            + _num(r.input_tokens, 0)
            + _num(r.output_tokens, 0)
            + _num(r.cost_usd, 2, "$")
            + "</tr>"
        )
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


# --- run pages --------------------------------------------------------------------------------------


def _run_page(r: IndexedRun, run_dir: Path, runs_dir: Path, slug: str, agent_slug: str | None) -> str:
    own = runs_dir / slug  # the run's trace page, monitor plot and copied files
    own.mkdir()
    record = _read_json(run_dir / "run.json") or {}
    nav = '<a href="../index.html">leaderboard</a>' + (
        f' › <a href="../agents/{_e(agent_slug)}.html">{_e(r.label)}</a>' if agent_slug else ""
    )
    body = (
        _kv(
            [
                ("entry", r.label),
                ("task", r.task),
                ("model", r.model),
                ("seed", r.seed),
                ("status", r.status),
                ("counted score (%)", None if r.counted_score is None else r.counted_score * 100),
                ("flagged", (", ".join(r.flag_reasons) or "yes") if r.flagged else "no"),
                ("directory", r.path),
            ]
        )
        + _spec_section(record)
        + _outcome_section(record)
        + _metrics_section(_read_json(run_dir / "metrics.json"))
        + _integrity_section(record, _read_json(run_dir / "integrity.json"))
        + _judges_section(record.get("judges") or [])
        + _trace_section(r, run_dir, own, slug)
        + _monitor_section(run_dir, own, slug)
        + _files_section(run_dir, own, slug)
    )
    return _page(r.run_id, body, 1, nav=nav)


def _spec_section(record: dict) -> str:
    if not record:
        return '<h2>Spec</h2><p class="muted">No readable run.json.</p>'
    card = record.get("model_card") or {}
    pairs = [
        *(record.get("spec") or {}).items(),
        ("base model", f"{card.get('hub_id', '')}@{card.get('revision', '')}"),
        ("created", record.get("created_at")),
        ("sandbox", record.get("sandbox")),
        ("imported from", record.get("imported_from")),
    ]
    if job := record.get("job"):
        pairs += [(f"job {k}", v) for k, v in job.items() if k != "history"]
    history = _pretty(job["history"], "earlier attempts") if job and job.get("history") else ""
    versions = _pretty(record["versions"], "versions") if record.get("versions") else ""
    return "<h2>Spec</h2>" + _kv(pairs) + history + versions


def _outcome_section(record: dict) -> str:
    parts = ["<h2>Outcome</h2>"]
    if outcome := record.get("outcome"):
        parts.append(_kv(outcome.items()))
    else:
        parts.append('<p class="muted">No outcome yet.</p>')
    if solve := record.get("solve"):
        keys = ("end", "exit_code", "seconds", "sandbox", "cache_layer", "detail", "gpus", "agent_failure")
        parts.append("<h3>Solve</h3>" + _kv((f"solve {k}", solve.get(k)) for k in keys))
        parts += [_pretty(solve[k], k) for k in ("attempts", "agent_setup", "network") if solve.get(k)]
    if final := record.get("final_model"):
        keys = ("state", "reason", "bytes", "has_generation_config", "sha256")
        parts.append("<h3>Final model</h3>" + _kv((k, final.get(k)) for k in keys))
    if stages := record.get("stages"):
        head = _th("stage") + _th("started") + _th("seconds", True) + _th("ok") + _th("error")
        rows = "".join(
            f"<tr><td>{_e(name)}</td><td>{_e(s.get('started_at', ''))}</td>{_num(s.get('seconds'), 1)}"
            f"<td>{_e(_fmt(s.get('ok')))}</td><td>{_e(s.get('error', ''))}</td></tr>"
            for name, s in stages.items()
        )
        parts.append(f"<h3>Stages</h3><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    return "".join(parts)


def _metrics_section(metrics: dict | None) -> str:
    if metrics is None:
        return '<h2>Metrics</h2><p class="muted">No metrics.json.</p>'
    keys = ("task", "score", "stderr", "n", "backend", "template", "epochs", "seconds", "judge_model")
    pairs = [(k, metrics.get(k)) for k in keys if k in metrics]
    pairs += [(f"metric {k}", v) for k, v in (metrics.get("metrics") or {}).items()]
    return "<h2>Metrics</h2>" + _kv(pairs) + _pretty(metrics, "metrics.json", where="metrics.json")


def _integrity_section(record: dict, integrity: dict | None) -> str:
    integrity = integrity or {}
    checks = record.get("checks") or integrity.get("checks") or []
    decision = record.get("integrity") or integrity.get("decision")
    parts = ["<h2>Integrity</h2>"]
    if decision:
        flagged = '<span class="flagged">flagged</span>' if decision.get("flagged") else "not flagged"
        parts.append(f"<p>Decision: {flagged}</p>")
        parts.append(
            _kv(
                [
                    ("reasons", ", ".join(decision.get("reasons") or []) or None),
                    ("notes", "; ".join(decision.get("notes") or []) or None),
                    ("judges' majority", decision.get("majority") or None),
                ]
            )
        )
    else:
        parts.append('<p class="muted">No integrity decision.</p>')
    if checks:
        head = _th("check") + _th("verdict") + _th("confidence") + _th("summary") + _th("evidence")
        rows = "".join(
            f"<tr><td>{_e(c.get('name', ''))}</td><td>{_verdict(c.get('verdict', ''))}</td>"
            f"<td>{_e(c.get('confidence', ''))}</td><td>{_e(c.get('summary', ''))}</td>"
            f"<td>{_pretty(c.get('evidence') or {}, 'evidence', where='run.json')}</td></tr>"
            for c in checks
        )
        parts.append(f'<table class="checks"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>')
    return "".join(parts)


def _judges_section(judges: list[dict]) -> str:
    if not judges:
        return '<h2>Judges</h2><p class="muted">No judges ran.</p>'
    parts = ["<h2>Judges</h2>"]
    for j in judges:
        parts.append(
            f"<h3>{_e(j.get('judge', ''))}</h3>"
            + _kv(
                [
                    ("attempts", j.get("attempts")),
                    ("seconds", j.get("seconds")),
                    ("error", j.get("error") or None),
                ]
            )
        )
        if verdicts := j.get("verdicts"):
            head = _th("category") + _th("verdict") + _th("justification") + _th("cited evidence")
            rows = ""
            for v in verdicts:
                cited = "".join(
                    f"<pre>{_e(_clip(c, EVENT_CHARS))}</pre>" for c in v.get("cited_evidence") or []
                )
                rows += (
                    f"<tr><td>{_e(v.get('category', ''))}</td><td>{_verdict(v.get('verdict', ''))}</td>"
                    f"<td>{_e(v.get('justification', ''))}</td><td>{cited}</td></tr>"
                )
            parts.append(f'<table class="judge"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>')
    return "".join(parts)


def _trace_section(r: IndexedRun, run_dir: Path, own: Path, slug: str) -> str:
    parts = ["<h2>Trace</h2>"]
    events, summary = render.load(run_dir / "agent")
    if summary:
        parts.append(
            '<div class="summary">' + "<br>".join(_e(s) for s in render.summary_lines(summary)) + "</div>"
        )
    if events or summary:
        (own / "trace.html").write_text(render.html_page(f"Trace of {r.run_id}", events, summary))
        parts.append(f'<p><a href="{_e(slug)}/trace.html">The whole trace</a> ({len(events)} events)</p>')
    for e in events[:TRACE_PREVIEW]:
        text = f"<pre>{_e(_clip(e.text, EVENT_CHARS))}</pre>" if e.text else ""
        parts.append(f'<div class="ev {_e(e.kind)}"><h3>{_e(render.headline(e))}</h3>{text}</div>')
    if len(events) > TRACE_PREVIEW:
        more = len(events) - TRACE_PREVIEW
        parts.append(f'<p class="muted">… {more} more events in the whole trace.</p>')
    if not events and not summary:
        parts.append('<p class="muted">No trace (agent/trace.jsonl).</p>')
    # The agent's output log: the only record of agents whose output has no parser (script agents).
    log = run_dir / "agent" / "output.log"
    if log.is_file():
        lines = log.read_text(errors="replace").splitlines()
        if len(lines) > LOG_HEAD + LOG_TAIL:
            skipped = len(lines) - LOG_HEAD - LOG_TAIL
            lines = [*lines[:LOG_HEAD], f"… [{skipped} lines]", *lines[-LOG_TAIL:]]
        text = "\n".join(_clip(line, LOG_LINE_CHARS) for line in lines)
        parts.append(
            f'<details open><summary>agent output log</summary><pre class="log">{_e(text)}</pre></details>'
        )
    return "".join(parts)


def _monitor_section(run_dir: Path, own: Path, slug: str) -> str:
    csv = run_dir / "monitor.csv"
    if not csv.is_file():
        return ""
    svg = next((p for p in plots.monitor_plot(csv, own / "monitor") if p.suffix == ".svg"), None)
    if svg is None:
        return ""
    src = f"{slug}/{svg.name}"
    return f'<h2>Resources</h2><div class="plots"><img src="{_e(src)}" alt="monitor"></div>'


def _files_section(run_dir: Path, own: Path, slug: str) -> str:
    items = ""
    for name in RUN_FILES:
        src = run_dir / name
        if src.is_symlink() or not src.is_file():
            continue
        size = src.stat().st_size
        if size >= MAX_COPY_BYTES:
            items += f"<li>{_e(name)} <span class='muted'>({size / 1e6:.1f} MB, not copied)</span></li>"
            continue
        dest = own / "files" / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        link = f'<a href="{_e(slug)}/files/{_e(name)}">{_e(name)}</a>'
        items += f'<li>{link} <span class="muted">({size:,} bytes)</span></li>'
    return f"<h2>Files</h2><ul>{items}</ul>" if items else ""
