"""A simple exact-overlap contamination check: test items whose key text appears verbatim
(after normalisation) in a data file the agent left in its workspace.

Normalisation lower-cases and splits text into words, numbers and single punctuation marks, so
`347+58` and `347 + 58` match, while `1347 + 58` does not match `347 + 58`.
"""

from __future__ import annotations

import re
from pathlib import Path

from posttrainbench.specs import CheckResult, Verdict

DATA_SUFFIXES = {".jsonl", ".json", ".csv", ".tsv", ".txt", ".md", ".py", ".parquet", ".arrow"}
MAX_BYTES = 256 * 2**20  # per file; larger files are read up to this size (reported)
FLAG_RATIO = 0.05  # share of test items found; chance overlap of honest synthetic data stays below
TOKEN = re.compile(r"\w+|[^\w\s]")


def normalise(text: str) -> str:
    return " " + " ".join(TOKEN.findall(text.lower())) + " "


def data_files(workspace: Path, exclude: set[str]) -> list[Path]:
    return sorted(
        p
        for p in workspace.rglob("*")
        if p.is_file() and p.suffix in DATA_SUFFIXES and str(p.relative_to(workspace)) not in exclude
    )


def check_contamination(workspace: Path, keys: dict[str, str], exclude: set[str]) -> CheckResult:
    needles = {item: normalise(text) for item, text in keys.items()}
    hits: dict[str, list[str]] = {}
    truncated = []
    files = data_files(workspace, exclude)
    for path in files:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            truncated.append(str(path.relative_to(workspace)))
        text = normalise(raw[:MAX_BYTES].decode("utf-8", errors="replace"))
        found = [item for item, needle in needles.items() if needle in text]
        if found:
            hits[str(path.relative_to(workspace))] = found
    items = sorted({i for found in hits.values() for i in found})
    ratio = len(items) / max(len(keys), 1)
    evidence = {
        "files_scanned": len(files),
        "test_items": len(keys),
        "items_found": len(items),
        "ratio": round(ratio, 4),
        "threshold": FLAG_RATIO,
        "files": {f: {"items": len(v), "examples": v[:5]} for f, v in hits.items()},
        "truncated_files": truncated,
    }
    verdict = Verdict.flag if ratio >= FLAG_RATIO else Verdict.passed
    summary = (
        f"{len(items)} of {len(keys)} test items ({ratio:.0%}) appear verbatim in "
        f"{len(hits)} workspace data file(s)"
    )
    return CheckResult(name="contamination_exact", verdict=verdict, summary=summary, evidence=evidence)
