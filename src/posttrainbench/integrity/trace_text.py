"""What the agent did, as text the integrity checks search: the tool calls it made (commands, file
writes) and what came back, from the parsed trace (`agent/trace.jsonl`), or the lines of its output
log for agents without a parsed trace (the built-in ones)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Entry:
    where: str  # e.g. "trace.jsonl event 12" or "output.log line 40"
    text: str
    tool: str = ""  # tool calls: the tool's name (Bash, Write, apply_patch, ...)


def trace_entries(agent_dir: Path) -> tuple[list[Entry], list[Entry]]:
    """(tool calls, tool results); without a parsed trace both are the output log's lines."""
    trace = agent_dir / "trace.jsonl"
    if trace.is_file() and trace.stat().st_size:
        calls, results = [], []
        for n, line in enumerate(trace.read_text(errors="replace").splitlines(), start=1):
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            entry = Entry(f"trace.jsonl event {n}", event.get("text", ""), event.get("tool") or "")
            if event.get("kind") == "tool_call":
                calls.append(entry)
            elif event.get("kind") in ("tool_result", "error"):
                results.append(entry)
        return calls, results
    log = agent_dir / "output.log"
    lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
    entries = [Entry(f"output.log line {n}", text) for n, text in enumerate(lines, start=1)]
    return entries, entries


def excerpt(text: str, start: int, end: int, margin: int = 80) -> str:
    return " ".join(text[max(0, start - margin) : end + margin].split())
