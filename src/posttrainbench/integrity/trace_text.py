"""What the agent did, as text the integrity checks search: the tool calls it made (commands, file
writes) and what came back, from the parsed trace (`agent/trace.jsonl`), or the lines of its output
log for agents without a parsed trace (the built-in ones)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    where: str  # e.g. "trace.jsonl event 12" or "output.log line 40"
    text: str
    tool: str = ""  # tool calls: the tool's name (Bash, Write, apply_patch, ...)


def _stamp(path: Path) -> tuple[int, int] | None:
    return (path.stat().st_mtime_ns, path.stat().st_size) if path.is_file() else None


def trace_entries(agent_dir: Path) -> tuple[tuple[Entry, ...], tuple[Entry, ...]]:
    """(tool calls, tool results); without a parsed trace both are the output log's lines. Read
    once for all the checks of a stage (kept while the files are unchanged)."""
    return _entries(agent_dir, _stamp(agent_dir / "trace.jsonl"), _stamp(agent_dir / "output.log"))


@lru_cache(maxsize=2)
def _entries(agent_dir: Path, *_stamps: object) -> tuple[tuple[Entry, ...], tuple[Entry, ...]]:
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
        return tuple(calls), tuple(results)
    log = agent_dir / "output.log"
    lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
    entries = tuple(Entry(f"output.log line {n}", text) for n, text in enumerate(lines, start=1))
    return entries, entries


def excerpt(text: str, start: int, end: int, margin: int = 80) -> str:
    return " ".join(text[max(0, start - margin) : end + margin].split())
