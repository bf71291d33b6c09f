"""Claude Code `--output-format stream-json --verbose` (2.1.x) -> trace events.

One JSON object per line:
- `system` `init` {session_id, model, tools, cwd}: a session event. `system` `api_retry` {attempt,
  max_retries, error_status, error}: an error event (the CLI retries). Other `system` subtypes
  (`status`, `thinking_tokens`, hooks, compaction) carry nothing for the trace.
- `assistant` {message: {id, model, content, usage}}: one event per content block (`text`, `thinking`,
  `tool_use`), so one message id spans several events that repeat the same `usage`. That usage is the
  one of `message_start`: exact input and cache counts, but `output_tokens` is the stream's first
  count (about 1), not the final one. An `assistant` event with an `error` field (model
  "<synthetic>") is the CLI's rendering of a failed API call, not a model response.
- `user` {message: {content: [tool_result {tool_use_id, content, is_error}]}, timestamp}.
- `stream_event` (only with `--include-partial-messages`): the raw Anthropic SSE events;
  `message_delta` carries the exact final usage of each response.
- `result` {subtype, is_error, api_error_status, result, session_id, total_cost_usd, usage,
  modelUsage}: the end of one invocation, with its token totals and cost.

Usage: one event per message id. Without partial messages the output count is only right in
`result`, so the invocation's last usage event also carries the remainder (the `result` totals minus
what the per-message events already counted) and `cost_usd` = `total_cost_usd`; totals are then
exact. With partial messages each usage event is exact. A trace cut off before `result` undercounts
output tokens (the session file under ~/.claude/projects has the final counts).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from posttrainbench.traces.parsers._common import as_json, as_status, is_zero, minus, number, records
from posttrainbench.traces.schema import TraceEvent, Usage

SYNTHETIC = "<synthetic>"


def _usage(raw: dict[str, Any] | None) -> Usage:
    raw = raw or {}
    return Usage(
        input=number(raw.get("input_tokens")),
        output=number(raw.get("output_tokens")),
        cached=number(raw.get("cache_read_input_tokens")),
        cache_write=number(raw.get("cache_creation_input_tokens")),
    )


def _result_usage(rec: dict[str, Any]) -> Usage:
    """An invocation's totals: the sum over `modelUsage` (which includes side calls to other models),
    else `usage`."""
    per_model = rec.get("modelUsage")
    if isinstance(per_model, dict) and per_model:
        total = Usage()
        for m in per_model.values():
            total += Usage(
                input=number(m.get("inputTokens")),
                output=number(m.get("outputTokens")),
                cached=number(m.get("cacheReadInputTokens")),
                cache_write=number(m.get("cacheCreationInputTokens")),
            )
        return total
    return _usage(rec.get("usage"))


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(c.get("text", "")) if isinstance(c, dict) and c.get("type") == "text" else as_json(c)
            for c in content
        )
    return "" if content is None else as_json(content)


class _Parser:
    def __init__(self) -> None:
        self.session: str | None = None
        self.tools: dict[str, str] = {}  # tool_use id -> tool name
        self.counted: set[str] = set()  # message ids whose usage is accounted for
        self.streaming: dict[str, tuple[Usage, str | None]] = {}  # partial messages: id -> start usage
        self.current: str | None = None  # the message id being streamed
        self.held: TraceEvent | None = None  # the latest usage event, held until we know the remainder
        self.since_result = Usage()  # usage emitted in this invocation
        self.failure: tuple[str | None, str, str | None] | None = None  # a synthetic error message

    def hold(self, event: TraceEvent) -> Iterator[TraceEvent]:
        yield from self.flush()
        assert event.usage is not None
        self.since_result += event.usage
        self.held = event

    def flush(self) -> Iterator[TraceEvent]:
        if self.held is not None:
            yield self.held
            self.held = None

    def feed(self, stamp: str | None, rec: dict[str, Any]) -> Iterator[TraceEvent]:
        kind = rec.get("type")
        time = rec.get("timestamp") or stamp
        if kind == "system":
            yield from self.system(time, rec)
        elif kind == "stream_event":
            yield from self.stream_event(time, rec.get("event") or {})
        elif kind == "assistant":
            yield from self.assistant(time, rec)
        elif kind == "user":
            content = (rec.get("message") or {}).get("content")
            for block in content if isinstance(content, list) else []:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    call_id = block.get("tool_use_id")
                    yield TraceEvent(
                        time=time,
                        kind="tool_result",
                        text=_text(block.get("content")),
                        tool=self.tools.get(call_id or ""),
                        call_id=call_id,
                    )
        elif kind == "result":
            yield from self.result(time, rec)

    def system(self, time: str | None, rec: dict[str, Any]) -> Iterator[TraceEvent]:
        if rec.get("subtype") == "init" and rec.get("session_id") and rec["session_id"] != self.session:
            self.session = rec["session_id"]
            yield TraceEvent(time=time, kind="session", session_id=self.session, model=rec.get("model"))
        elif rec.get("subtype") == "api_retry":
            status = rec.get("error_status")
            yield TraceEvent(
                time=time,
                kind="error",
                status=as_status(status),
                error_type=rec.get("error"),
                text=f"API error {status} ({rec.get('error')}); retry {rec.get('attempt')}/{rec.get('max_retries')}",
            )

    def stream_event(self, time: str | None, event: dict[str, Any]) -> Iterator[TraceEvent]:
        if event.get("type") == "message_start":
            message = event.get("message") or {}
            self.current = message.get("id")
            if self.current:
                self.streaming[self.current] = (_usage(message.get("usage")), message.get("model"))
        elif event.get("type") == "message_delta" and self.current in self.streaming:
            start, model = self.streaming[self.current]
            final = {**start.model_dump(), **_usage(event.get("usage")).model_dump(exclude_defaults=True)}
            self.counted.add(self.current)
            yield from self.hold(TraceEvent(time=time, kind="usage", usage=Usage(**final), model=model))

    def assistant(self, time: str | None, rec: dict[str, Any]) -> Iterator[TraceEvent]:
        message = rec.get("message") or {}
        blocks = [b for b in message.get("content") or [] if isinstance(b, dict)]
        if rec.get("error") or message.get("model") == SYNTHETIC:
            text = "\n".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
            self.failure = (rec.get("error"), text, time)
            return
        msg_id = message.get("id")
        if msg_id and msg_id not in self.counted and msg_id not in self.streaming:
            self.counted.add(msg_id)
            usage = _usage(message.get("usage"))
            yield from self.hold(TraceEvent(time=time, kind="usage", usage=usage, model=message.get("model")))
        for block in blocks:
            btype = block.get("type")
            if btype == "text" and block.get("text"):
                yield TraceEvent(time=time, kind="message", text=block["text"], model=message.get("model"))
            elif btype == "thinking" and block.get("thinking"):
                yield TraceEvent(time=time, kind="reasoning", text=block["thinking"])
            elif btype in ("tool_use", "server_tool_use"):
                self.tools[block.get("id", "")] = block.get("name", "")
                yield TraceEvent(
                    time=time,
                    kind="tool_call",
                    tool=block.get("name"),
                    text=as_json(block.get("input", {})),
                    call_id=block.get("id"),
                )

    def result(self, time: str | None, rec: dict[str, Any]) -> Iterator[TraceEvent]:
        remainder = minus(_result_usage(rec), self.since_result)
        cost = rec.get("total_cost_usd")
        cost = float(cost) if isinstance(cost, int | float) else None
        if self.held is not None:
            assert self.held.usage is not None
            self.held.usage += remainder
            self.held.cost_usd = cost
        elif not is_zero(remainder) or cost:
            self.held = TraceEvent(time=time, kind="usage", usage=remainder, cost_usd=cost)
        yield from self.flush()
        self.since_result = Usage()
        if rec.get("is_error"):
            error_type, text, _ = self.failure or (None, "", None)
            status = rec.get("api_error_status")
            errors = rec.get("errors")
            yield TraceEvent(
                time=time,
                kind="error",
                status=as_status(status),
                error_type=error_type or rec.get("subtype"),
                text=str(rec.get("result") or text or (as_json(errors) if errors else "")),
            )
        self.failure = None

    def close(self) -> Iterator[TraceEvent]:
        yield from self.flush()
        if self.failure:
            error_type, text, time = self.failure
            yield TraceEvent(time=time, kind="error", error_type=error_type, text=text)


def parse(lines: Iterable[tuple[str | None, str]]) -> Iterator[TraceEvent]:
    parser = _Parser()
    for stamp, rec in records(lines):
        yield from parser.feed(stamp, rec)
    yield from parser.close()
