"""One parser per CLI agent: its machine-readable output -> trace events (see traces.schema)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from posttrainbench.traces.schema import TraceEvent

Parser = Callable[[Iterable[tuple[str | None, str]]], Iterator[TraceEvent]]

PARSERS: dict[str, Parser] = {}
