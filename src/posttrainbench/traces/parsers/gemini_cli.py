"""Gemini CLI `--output-format stream-json` (0.6x) -> trace events.

One JSON object per line, each with an ISO `timestamp`:
- `init` {session_id, model}: the session (`gemini --resume <session_id>` resumes it).
- `message` {role: user|assistant, content, delta}: assistant text arrives in delta chunks, merged
  here into one message event; user messages (the prompt) are skipped. Thoughts are not emitted.
- `tool_use` {tool_name, tool_id, parameters}; `tool_result` {tool_id, status, output, error}.
- `error` {severity, message}: a non-fatal warning or error.
- `result` {status: success|error, error: {type, message}, stats: {total_tokens, input_tokens,
  output_tokens, cached, input, duration_ms, tool_calls, models: {name: {same token fields}}}}.

Usage is reported only as invocation totals, per model, in `result` (one usage event per model with
tokens). `input_tokens` counts cache reads, `input` does not; `output_tokens` excludes thoughts,
which are the rest of `total_tokens` (usage.reasoning, added to usage.output). No cost is reported.
A failed API call shows as `result` status "error" whose message embeds the provider's JSON error
(`"code": 529`); a quota error (429) only as "Resource has been exhausted".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from posttrainbench.traces.parsers._common import as_json, number, records, status_in
from posttrainbench.traces.schema import TraceEvent, Usage

CODE = re.compile(r'"code"\s*:\s*(\d{3})')
GOOGLE_STATUS = re.compile(r'"status"\s*:\s*"([A-Z_]+)"')
QUOTA = re.compile(r"resource has been exhausted|resource_exhausted|quota", re.I)


def _usage(raw: dict[str, Any]) -> Usage:
    prompt, output, cached = (
        number(raw.get("input_tokens")),
        number(raw.get("output_tokens")),
        number(raw.get("cached")),
    )
    thoughts = max(0, number(raw.get("total_tokens")) - prompt - output)
    fresh = number(raw["input"]) if "input" in raw else max(0, prompt - cached)
    return Usage(input=fresh, output=output + thoughts, cached=cached, reasoning=thoughts)


def _status(message: str) -> int | None:
    m = CODE.search(message)
    if m:
        return int(m.group(1))
    return status_in(message) or (429 if QUOTA.search(message) else None)


def parse(lines: Iterable[tuple[str | None, str]]) -> Iterator[TraceEvent]:
    tools: dict[str, str] = {}
    text: list[str] = []  # assistant deltas not yet emitted
    text_time: str | None = None
    model: str | None = None

    def flush() -> Iterator[TraceEvent]:
        nonlocal text
        if text:
            yield TraceEvent(time=text_time, kind="message", text="".join(text), model=model)
            text = []

    for stamp, rec in records(lines):
        kind = rec.get("type")
        time = rec.get("timestamp") or stamp
        if kind == "message" and rec.get("role") == "assistant":
            if not rec.get("delta"):
                yield from flush()
            if not text:
                text_time = time
            text.append(str(rec.get("content", "")))
            continue
        yield from flush()
        if kind == "init":
            model = rec.get("model")
            yield TraceEvent(time=time, kind="session", session_id=rec.get("session_id"), model=model)
        elif kind == "tool_use":
            tools[rec.get("tool_id", "")] = rec.get("tool_name", "")
            yield TraceEvent(
                time=time,
                kind="tool_call",
                tool=rec.get("tool_name"),
                text=as_json(rec.get("parameters", {})),
                call_id=rec.get("tool_id"),
            )
        elif kind == "tool_result":
            error = rec.get("error") or {}
            output = rec.get("output")
            yield TraceEvent(
                time=time,
                kind="tool_result",
                tool=tools.get(rec.get("tool_id", "")),
                text=str(output if output is not None else error.get("message", "")),
                call_id=rec.get("tool_id"),
            )
        elif kind == "error":
            yield TraceEvent(
                time=time, kind="error", error_type=rec.get("severity"), text=str(rec.get("message", ""))
            )
        elif kind == "result":
            stats = rec.get("stats") or {}
            models = {name: _usage(raw) for name, raw in (stats.get("models") or {}).items()}
            models = {name: u for name, u in models.items() if u != Usage()}
            if models:
                for name, usage in models.items():
                    yield TraceEvent(time=time, kind="usage", usage=usage, model=name)
            elif number(stats.get("total_tokens")):
                yield TraceEvent(time=time, kind="usage", usage=_usage(stats), model=model)
            if rec.get("status") == "error":
                error = rec.get("error") or {}
                message = str(error.get("message", ""))
                google = GOOGLE_STATUS.search(message)
                yield TraceEvent(
                    time=time,
                    kind="error",
                    status=_status(message),
                    error_type=google.group(1) if google else error.get("type"),
                    text=message,
                )
    yield from flush()
