"""One parser per CLI agent: its machine-readable output -> trace events (see traces.schema).

Each parser takes (timestamp or None, raw output line) pairs, skips lines that are not JSON objects
(stderr noise, the harness's own lines), and yields TraceEvents in order. The output of several
invocations of one session (a run and its continuations) is parsed as one stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from posttrainbench.traces.parsers import claude_code, codex, gemini_cli, opencode
from posttrainbench.traces.schema import TraceEvent

Parser = Callable[[Iterable[tuple[str | None, str]]], Iterator[TraceEvent]]

PARSERS: dict[str, Parser] = {
    "claude-code": claude_code.parse,
    "codex": codex.parse,
    "gemini-cli": gemini_cli.parse,
    "opencode": opencode.parse,
}
