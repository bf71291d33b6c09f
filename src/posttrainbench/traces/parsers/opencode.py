"""OpenCode `opencode run --format json` (1.x) -> trace events.

One JSON object per line, each with `timestamp` (milliseconds since the epoch) and `sessionID`
(`opencode run --session <id>` resumes it):
- `step_start` {part}: a model response begins.
- `text` {part: {text}}; `reasoning` {part: {text}} (printed only with `--thinking`).
- `tool_use` {part: {tool, callID, state: {status: completed|error, input, output, error}}}: printed
  once the tool has finished, so it gives both the call and its result.
- `step_finish` {part: {reason, cost, tokens: {input, output, reasoning, cache: {read, write}}}}: the
  end of one model response, with its usage and cost (USD, from OpenCode's price list; 0 where the
  model has no known price, which the parser reports as no cost).
- `error` {error: {name, data: {message, statusCode, isRetryable, responseBody}}}: the session
  failed. OpenCode retries 429/5xx five times before (it honours retry-after) and prints nothing
  while it does.

`tokens.input` excludes cache reads and writes; `tokens.output` excludes reasoning (added back here,
so that usage.output includes usage.reasoning). The JSON names no model.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from posttrainbench.traces.parsers._common import as_json, as_status, iso_from_ms, number, records
from posttrainbench.traces.schema import TraceEvent, Usage


def _usage(tokens: dict[str, Any]) -> Usage:
    cache = tokens.get("cache") or {}
    reasoning = number(tokens.get("reasoning"))
    return Usage(
        input=number(tokens.get("input")),
        output=number(tokens.get("output")) + reasoning,
        cached=number(cache.get("read")),
        cache_write=number(cache.get("write")),
        reasoning=reasoning,
    )


def parse(lines: Iterable[tuple[str | None, str]]) -> Iterator[TraceEvent]:
    session: str | None = None
    for stamp, rec in records(lines):
        kind = rec.get("type")
        part = rec.get("part") if isinstance(rec.get("part"), dict) else {}
        time = iso_from_ms(rec.get("timestamp")) or stamp
        if rec.get("sessionID") and rec["sessionID"] != session:
            session = rec["sessionID"]
            yield TraceEvent(time=time, kind="session", session_id=session)
        if kind == "text" and part.get("text"):
            yield TraceEvent(time=time, kind="message", text=part["text"])
        elif kind == "reasoning" and part.get("text"):
            yield TraceEvent(time=time, kind="reasoning", text=part["text"])
        elif kind == "tool_use":
            state = part.get("state") or {}
            tool, call_id = part.get("tool"), part.get("callID")
            yield TraceEvent(
                time=time, kind="tool_call", tool=tool, text=as_json(state.get("input", {})), call_id=call_id
            )
            output = state.get("output") if state.get("status") == "completed" else state.get("error")
            yield TraceEvent(
                time=time, kind="tool_result", tool=tool, text=as_json(output or ""), call_id=call_id
            )
        elif kind == "step_finish":
            cost = part.get("cost")
            yield TraceEvent(
                time=time,
                kind="usage",
                usage=_usage(part.get("tokens") or {}),
                cost_usd=float(cost) if isinstance(cost, int | float) and cost > 0 else None,
            )
        elif kind == "error":
            error = rec.get("error") or {}
            data = error.get("data") or {}
            status = data.get("statusCode")
            yield TraceEvent(
                time=time,
                kind="error",
                status=as_status(status),
                error_type=error.get("name"),
                text=str(data.get("message") or error.get("name") or ""),
            )
