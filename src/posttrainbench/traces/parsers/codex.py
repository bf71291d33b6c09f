"""Codex `codex exec --json` (0.17x) -> trace events.

One JSON object per line:
- `thread.started` {thread_id}: the session (`codex exec resume <thread_id>` resumes it).
- `turn.started`; `turn.completed` {usage: {input_tokens, cached_input_tokens,
  cache_write_input_tokens, output_tokens, reasoning_output_tokens}}; `turn.failed` {error: {message}}.
- `item.started` / `item.updated` / `item.completed` {item: {id, type, ...}} with item types
  `agent_message` {text}, `reasoning` {text}, `command_execution` {command, aggregated_output,
  exit_code, status}, `file_change` {changes, status}, `mcp_tool_call` {server, tool, arguments,
  result, error}, `web_search` {query}, `todo_list`, and `error` {message} (a non-fatal warning).
- `error` {message}: a stream error; "Reconnecting... n/m (...)" while the CLI retries.

The JSON names no model and gives no per-response usage: `turn.completed` reports the thread's
cumulative totals (a resumed thread counts its earlier invocations too). The parser emits one usage
event per turn, the difference from the previous total of the same thread in this stream, so the
output of all invocations of a session must be parsed as one stream. Codex reports no cost. HTTP
statuses appear only inside error messages ("unexpected status 401 Unauthorized: ...").
Tool calls carry the item's id as call_id and the item type as tool name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from posttrainbench.traces.parsers._common import as_json, minus, number, records, status_in
from posttrainbench.traces.schema import TraceEvent, Usage

TOOL_ITEMS = ("command_execution", "file_change", "mcp_tool_call", "web_search")


def _cumulative(raw: dict[str, Any]) -> Usage:
    cached = number(raw.get("cached_input_tokens"))
    written = number(raw.get("cache_write_input_tokens"))
    return Usage(
        # input_tokens counts cache reads (and writes) too; Usage.input does not
        input=max(0, number(raw.get("input_tokens")) - cached - written),
        output=number(raw.get("output_tokens")),
        cached=cached,
        cache_write=written,
        reasoning=number(raw.get("reasoning_output_tokens")),
    )


def _tool(item: dict[str, Any]) -> tuple[str, str]:
    """(tool name, input as JSON text) of a tool-like item."""
    kind = item.get("type", "")
    if kind == "command_execution":
        return kind, as_json({"command": item.get("command", "")})
    if kind == "file_change":
        return kind, as_json({"changes": item.get("changes", [])})
    if kind == "mcp_tool_call":
        return f"mcp:{item.get('server', '')}/{item.get('tool', '')}", as_json(item.get("arguments", {}))
    return kind, as_json({"query": item.get("query", "")})


def _output(item: dict[str, Any]) -> str | None:
    kind = item.get("type")
    if kind == "command_execution":
        return str(item.get("aggregated_output") or "")
    if kind == "file_change":
        return str(item.get("status", ""))
    if kind == "mcp_tool_call":
        if item.get("error"):
            return as_json(item["error"].get("message", item["error"]))
        content = (item.get("result") or {}).get("content") or []
        return "\n".join(c.get("text", "") if isinstance(c, dict) else as_json(c) for c in content)
    return None  # web_search: the JSON has no result


def parse(lines: Iterable[tuple[str | None, str]]) -> Iterator[TraceEvent]:
    thread: str | None = None
    totals: dict[str | None, Usage] = {}  # thread -> the cumulative usage seen so far
    started: set[str] = set()  # tool items already emitted as calls (item ids restart per invocation)
    last_error = ""
    for time, rec in records(lines):
        kind = rec.get("type")
        item = rec.get("item") if isinstance(rec.get("item"), dict) else {}
        if kind == "thread.started":
            thread = rec.get("thread_id")
            started.clear()
            yield TraceEvent(time=time, kind="session", session_id=thread)
        elif kind == "item.started" and item.get("type") in TOOL_ITEMS:
            name, args = _tool(item)
            started.add(item.get("id", ""))
            yield TraceEvent(time=time, kind="tool_call", tool=name, text=args, call_id=item.get("id"))
        elif kind == "item.completed":
            itype = item.get("type")
            if itype == "agent_message":
                yield TraceEvent(time=time, kind="message", text=item.get("text", ""))
            elif itype == "reasoning" and item.get("text"):
                yield TraceEvent(time=time, kind="reasoning", text=item["text"])
            elif itype == "error":
                yield TraceEvent(time=time, kind="error", error_type="warning", text=item.get("message", ""))
            elif itype in TOOL_ITEMS:
                name, args = _tool(item)
                if item.get("id") not in started:
                    yield TraceEvent(
                        time=time, kind="tool_call", tool=name, text=args, call_id=item.get("id")
                    )
                output = _output(item)
                if output is not None:
                    yield TraceEvent(
                        time=time, kind="tool_result", tool=name, text=output, call_id=item.get("id")
                    )
        elif kind == "turn.completed":
            now = _cumulative(rec.get("usage") or {})
            usage = minus(now, totals.get(thread, Usage()))
            totals[thread] = now
            yield TraceEvent(time=time, kind="usage", usage=usage)
        elif kind == "error" or kind == "turn.failed":
            text = str(rec.get("message") or (rec.get("error") or {}).get("message") or "")
            if kind == "turn.failed" and text == last_error:
                continue  # the same failure, already reported by its `error` event
            last_error = text
            retrying = text.startswith("Reconnecting")
            yield TraceEvent(
                time=time,
                kind="error",
                status=status_in(text),
                error_type="retry" if retrying else kind,
                text=text,
            )
