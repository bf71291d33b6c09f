"""Helpers shared by the CLI parsers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from posttrainbench.traces.schema import Usage

STATUS = re.compile(r"\bstatus(?: code)?:?\s*(\d{3})\b", re.I)


def records(lines: Iterable[tuple[str | None, str]]) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """The JSON objects among the lines (other lines, e.g. stderr noise, are skipped)."""
    for stamp, line in lines:
        text = line.strip()
        if not text.startswith("{"):
            continue
        try:
            record = json.loads(text)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield stamp, record


def iso_from_ms(ms: Any) -> str | None:
    if not isinstance(ms, int | float):
        return None
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def status_in(text: str) -> int | None:
    """An HTTP status named in an error message ("unexpected status 529 ...", "last status: 429")."""
    m = STATUS.search(text)
    return int(m.group(1)) if m else None


def as_json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def as_status(value: Any) -> int | None:
    """An HTTP status as the CLI gave it, when it is one."""
    return value if isinstance(value, int) else None


def number(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


def minus(a: Usage, b: Usage) -> Usage:
    """a - b, field by field, never below zero."""
    return Usage(**{k: max(0, getattr(a, k) - getattr(b, k)) for k in Usage.model_fields})


def is_zero(u: Usage) -> bool:
    return not any(getattr(u, k) for k in Usage.model_fields)
