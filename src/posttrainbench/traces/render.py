"""`ptb trace`: a run's trace as a readable transcript in the terminal, or as one standalone HTML
page (no scripts, no external files) to read in a browser or attach to a report."""

from __future__ import annotations

import html
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from posttrainbench.traces.schema import TraceEvent
from posttrainbench.traces.summary import TraceSummary

STYLE = {
    "message": "bold",
    "reasoning": "italic dim",
    "tool_call": "cyan",
    "tool_result": "green",
    "error": "bold red",
    "usage": "dim",
    "session": "dim",
}


def load(agent_dir: Path) -> tuple[list[TraceEvent], TraceSummary | None]:
    trace, summary = agent_dir / "trace.jsonl", agent_dir / "summary.json"
    events = (
        [TraceEvent.model_validate_json(line) for line in trace.read_text().splitlines() if line.strip()]
        if trace.is_file()
        else []
    )
    return events, TraceSummary.model_validate_json(summary.read_text()) if summary.is_file() else None


def _clip(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters]"


def headline(e: TraceEvent) -> str:
    when = (e.time or "")[11:19]
    what = e.kind.replace("_", " ")
    if e.tool:
        what += f" {e.tool}"
    if e.kind == "error" and e.status:
        what += f" {e.status}"
    if e.kind == "usage" and e.usage:
        u = e.usage
        what += f" in={u.input} out={u.output} cached={u.cached}" + (
            f" ${e.cost_usd:.4f}" if e.cost_usd else ""
        )
    if e.kind == "session" and e.session_id:
        what += f" {e.session_id}"
    return f"{when} {what}".strip()


def summary_lines(s: TraceSummary) -> list[str]:
    t = s.tokens
    cost = "unknown" if s.cost_usd is None else f"${s.cost_usd:.2f} ({s.cost_source})"
    tools = ", ".join(f"{k} {v}" for k, v in s.tool_calls.items()) or "none"
    return [
        f"agent {s.agent}; models {', '.join(s.models) or '-'}; {s.attempts} attempt(s)",
        f"turns {s.turns}, messages {s.messages}, errors {s.errors}; tool calls {s.tool_calls_total}: {tools}",
        f"tokens: input {t.input}, output {t.output}, cached {t.cached}, cache writes {t.cache_write}, "
        f"reasoning {t.reasoning}; cost {cost}",
        f"active {s.active_seconds / 60:.1f} min, idle {s.idle_seconds / 60:.1f} min, "
        f"longest silence {s.longest_silence_seconds / 60:.1f} min",
    ]


def print_transcript(
    console: Console, events: list[TraceEvent], summary: TraceSummary | None, limit: int | None
) -> None:
    if summary:
        for line in summary_lines(summary):
            console.print(escape(line), style="bold", highlight=False)
        console.print()
    for e in events:
        if e.kind == "usage":
            continue
        console.print(escape(headline(e)), style=STYLE[e.kind], highlight=False)
        if e.text:  # soft wrap: the terminal wraps; a redirected transcript keeps whole lines
            console.print(escape(_clip(e.text, limit)), highlight=False, soft_wrap=True)
        console.print()


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem; }}
.summary {{ background: #f4f4f4; padding: .6rem 1rem; border-radius: 6px; }}
.ev {{ border-left: 4px solid #ccc; margin: .7rem 0; padding: .1rem .8rem; }}
.ev h3 {{ font-size: 12px; margin: .2rem 0; color: #555; font-weight: 600; }}
.ev pre {{ white-space: pre-wrap; word-break: break-word; margin: .2rem 0; }}
.message {{ border-color: #333; }} .reasoning {{ border-color: #aaa; color: #555; }}
.tool_call {{ border-color: #0a7ea4; }} .tool_result {{ border-color: #3a8a3a; }}
.error {{ border-color: #c0392b; background: #fff3f2; }} .session, .usage {{ border-color: #ddd; color: #777; }}
</style></head><body>
<h1>{title}</h1>
<div class="summary">{summary}</div>
{events}
</body></html>
"""


def html_page(title: str, events: list[TraceEvent], summary: TraceSummary | None) -> str:
    parts = []
    for e in events:
        body = f"<pre>{html.escape(e.text)}</pre>" if e.text else ""
        parts.append(f'<div class="ev {e.kind}"><h3>{html.escape(headline(e))}</h3>{body}</div>')
    summary_html = "<br>".join(html.escape(line) for line in summary_lines(summary)) if summary else ""
    return PAGE.format(title=html.escape(title), summary=summary_html, events="\n".join(parts))
