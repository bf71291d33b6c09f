"""From an agent's output log to `agent/trace.jsonl` and `agent/summary.json`: the CLI's parser turns
the (redacted, timestamped) log into trace events; the summary counts turns, tool calls by tool,
tokens and cost, and active vs idle time; the failure classifier names what went wrong on the
agent's side (provider errors, auth, spend limits, a hung CLI) from the events and the log.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from posttrainbench.specs import AgentFailure, AgentFailureClass, SolveAttempt
from posttrainbench.traces import prices
from posttrainbench.traces.parsers import Parser
from posttrainbench.traces.schema import TraceEvent, Usage

STAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # output.log's line prefix, UTC
LOG_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\] ?(.*)$")
HUNG_SILENCE_S = 30 * 60

# Evidence in the CLI's words, for CLIs that print errors rather than emit them as events.
SPEND_LIMIT = re.compile(
    r"you've hit your (usage )?limit|spending_limit|billing_hard_limit|insufficient_quota|budget_exceeded"
    r"|credit balance is too low|plan does not yet include|quota exceeded",
    re.I,
)
# A bare 401/403 counts only after a status word, as in PROVIDER: a progress bar's "401.83it/s" is none.
AUTH = re.compile(
    r"(status|error|http|code)\D{0,20}\b(401|403)\b(?!\.\d)|unauthorized|authentication_error"
    r"|invalid (x-)?api[ -]key|api key not valid|token_expired|failed to refresh token|permission_denied",
    re.I,
)
PROVIDER = re.compile(
    r"(status|error|http)\D{0,20}\b(429|500|502|503|504|529)\b|overloaded|rate[_ ]limit|fetch failed"
    r"|ECONNRESET|ETIMEDOUT|ECONNREFUSED|socket hang up|stream disconnected|internal server error"
    r"|service unavailable",
    re.I,
)


class TraceSummary(BaseModel):
    agent: str
    parser: str | None  # None: this agent's output has no parser (built-in and script agents)
    events: int = 0
    turns: int = 0  # model responses (usage events; messages where the CLI reports no usage)
    messages: int = 0
    tool_calls: dict[str, int] = {}
    tool_calls_total: int = 0
    errors: int = 0
    tokens: Usage = Usage()
    models: list[str] = []
    cost_usd: float | None = None
    cost_source: Literal["cli", "price-table", "unknown"] = "unknown"
    price_table: str | None = None
    attempts: int = 1  # 1 + continuations
    active_seconds: float = 0.0  # the agent's process was running
    idle_seconds: float = 0.0  # budget left unused: the agent had exited before its deadline
    longest_silence_seconds: float = 0.0  # the longest stretch without any output


def log_lines(log: Path) -> Iterator[tuple[str | None, str]]:
    """(timestamp, raw line) of the agent's output.log."""
    if not log.is_file():
        return
    with log.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            m = LOG_LINE.match(line.rstrip("\n"))
            yield (m.group(1), m.group(2)) if m else (None, line.rstrip("\n"))


def epoch(stamp: str) -> float:
    """Unix seconds of an output.log timestamp."""
    return datetime.strptime(stamp, STAMP_FORMAT).replace(tzinfo=UTC).timestamp()


def summarize(
    agent: str,
    events: list[TraceEvent],
    stamps: list[str],
    attempts: list[SolveAttempt],
    budget: float,
    model: str | None = None,
    parsed: bool = True,
) -> TraceSummary:
    """`model`: the configured model, for CLIs whose output does not name it (Codex); `parsed`: whether
    the agent's output went through a trace parser."""
    usage_events = [e for e in events if e.kind == "usage" and e.usage]
    tokens = sum((e.usage for e in usage_events), Usage())
    tools = Counter(e.tool or "?" for e in events if e.kind == "tool_call")
    models = sorted({e.model for e in events if e.model} or ({model} if model and events else set()))
    cli_costs = [e.cost_usd for e in events if e.cost_usd is not None]
    cost, source, table = None, "unknown", None
    if cli_costs:
        cost, source = round(sum(cli_costs), 6), "cli"
    elif usage_events:
        per_event = [
            prices.cost(e.model or (models[0] if len(models) == 1 else ""), e.usage) for e in usage_events
        ]
        if all(c is not None for c in per_event):
            cost, source, table = round(sum(per_event), 6), "price-table", prices.VERSION
    active = sum(a.seconds for a in attempts)
    silences = [epoch(b) - epoch(a) for a, b in pairwise(stamps)]
    messages = sum(e.kind == "message" for e in events)
    return TraceSummary(
        agent=agent,
        parser=agent if parsed else None,
        events=len(events),
        turns=len(usage_events) or messages,
        messages=messages,
        tool_calls=dict(sorted(tools.items())),
        tool_calls_total=sum(tools.values()),
        errors=sum(e.kind == "error" for e in events),
        tokens=tokens,
        models=models,
        cost_usd=cost,
        cost_source=source,
        price_table=table,
        attempts=len(attempts),
        active_seconds=round(active, 1),
        idle_seconds=round(max(0.0, budget - active), 1) if attempts else 0.0,
        longest_silence_seconds=max(silences, default=0.0),
    )


def classify(text: str, status: int | None) -> AgentFailureClass | None:
    if SPEND_LIMIT.search(text):
        return AgentFailureClass.spend_limit
    if status in (401, 403) or (status is None and AUTH.search(text)):
        return AgentFailureClass.auth_failed
    if status == 429 or (status or 0) >= 500 or PROVIDER.search(text):
        return AgentFailureClass.provider_error
    return None


def agent_failure(events: list[TraceEvent], tail: list[str], hung: bool) -> AgentFailure | None:
    """What ended the agent's work, when it was not the agent's own choice: the last error with no
    model response after it (from the trace; from the log's last plain-text lines only when there
    is no parsed trace), or a CLI silent and alone at the deadline."""
    last_error = next((i for i in range(len(events) - 1, -1, -1) if events[i].kind == "error"), None)
    if last_error is not None and not any(e.kind in ("usage", "message") for e in events[last_error + 1 :]):
        e = events[last_error]
        found = classify(" ".join(filter(None, [e.error_type, e.text])), e.status)
        if found:
            return AgentFailure(failure=found, evidence=(e.text or e.error_type or "")[:500], status=e.status)
    if not events:
        for line in reversed([t for t in tail if not t.lstrip().startswith("{")]):
            found = classify(line, None)
            if found:
                return AgentFailure(failure=found, evidence=line[:500])
    if hung:
        return AgentFailure(
            failure=AgentFailureClass.agent_hung,
            evidence=f"no output for {HUNG_SILENCE_S // 60}+ minutes before the deadline and no command running",
        )
    return None


def build(
    agent: str,
    agent_dir: Path,
    lines: list[tuple[str | None, str]],
    attempts: list[SolveAttempt],
    budget: float,
    parser: Parser | None,
    model: str | None = None,
) -> tuple[list[TraceEvent], TraceSummary]:
    """Write agent/trace.jsonl (when the agent has a `parser`) and agent/summary.json from the output
    log's `lines` (see log_lines)."""
    events = list(parser(lines)) if parser else []
    if parser:
        with (agent_dir / "trace.jsonl").open("w", encoding="utf-8") as f:
            for e in events:
                f.write(e.model_dump_json(exclude_none=True) + "\n")
    stamps = [t for t, _ in lines if t]
    summary = summarize(agent, events, stamps, attempts, budget, model, parsed=parser is not None)
    (agent_dir / "summary.json").write_text(json.dumps(summary.model_dump(mode="json"), indent=2) + "\n")
    return events, summary
