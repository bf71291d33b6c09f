"""The trace event schema shared by every agent (`agent/trace.jsonl`, one event per line).

A parser turns a CLI's own machine-readable output (Claude Code's stream-json, Codex's `--json`,
Gemini CLI's stream-json, OpenCode's `--format json`) into these events. Token counts sit on `usage`
events only, one per model response, as the provider reported them; totals are their sums.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

EventKind = Literal["message", "reasoning", "tool_call", "tool_result", "error", "usage", "session"]


class Usage(BaseModel):
    """Tokens of one model response, the same meaning for every provider: `input` is the prompt
    tokens NOT read from a cache (OpenAI and Gemini report prompt tokens including cached ones: the
    parser subtracts them), `cached` the cache reads, `cache_write` the cache writes (Anthropic),
    `output` all generated tokens and `reasoning` the part of them spent on reasoning."""

    input: int = 0
    output: int = 0
    cached: int = 0
    cache_write: int = 0
    reasoning: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(**{k: getattr(self, k) + getattr(other, k) for k in Usage.model_fields})


class TraceEvent(BaseModel):
    time: str | None = None  # ISO 8601 UTC where the CLI or the output log gives one
    kind: EventKind
    text: str = ""  # message / reasoning text, tool input (as JSON text) or output, error message
    tool: str | None = None  # tool_call / tool_result: the tool's name (e.g. Bash, shell, run_shell_command)
    call_id: str | None = None  # pairs a tool_result with its tool_call
    usage: Usage | None = None  # usage events
    model: str | None = None
    cost_usd: float | None = None  # where the CLI itself reports a cost (e.g. Claude Code's result)
    session_id: str | None = None  # session events: the CLI's session, for resuming it
    status: int | None = None  # error events: the HTTP status when one is known
    error_type: str | None = None  # error events: the provider's or CLI's error type
