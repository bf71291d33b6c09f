"""The contamination check: the task's test items searched, as hashed text windows (`ngrams.py`), in
every data and code file the agent produced or downloaded, and in its trace.

Data files are the workspace (less the files the harness put there, among them the allowed
training data it ships), the model cache's copy-on-write upper layer (hub downloads) and the
agent's home cache (`datasets` writes there). Up to `TOLERANCE` items may match by accident, as in
the original's rules; more in the data files is a high-confidence flag. Matches only in the trace
(the agent saw test items, e.g. printed by a tool) are a low-confidence flag for the judges.
"""

from __future__ import annotations

from pathlib import Path

from posttrainbench import tasks
from posttrainbench.integrity.ngrams import ITEM_RATIO, Index, Scanner, W, data_files, scan_file
from posttrainbench.specs import CheckResult, Verdict

TOLERANCE = 3  # accidentally contaminated items tolerated (the original's rule)
MAX_LISTED = 50


def task_index(task_name: str) -> Index:
    """The window index of the task's test items (`Task.contamination_keys`)."""
    task = tasks.get(task_name)
    return Index.build(task.contamination_keys(task.data()))


def scan(index: Index, roots: dict[str, Path], exclude: dict[str, set[str]]) -> dict:
    """Per file (labelled `root-label/relative path`): the test items found and their share of
    windows matched; also the totals scanned."""
    scanner = Scanner(index)
    files: dict[str, dict[str, float]] = {}
    scanned = size = 0
    for label, root in roots.items():
        if not root.exists():
            continue
        for path in data_files(root, exclude.get(label, set())):
            scanned += 1
            size += path.stat().st_size
            found = scan_file(scanner, path)
            if found:
                name = f"{label}/{path.relative_to(root)}" if root.is_dir() else label
                files[name] = found
    return {"files": files, "files_scanned": scanned, "bytes_scanned": size}


def _items(files: dict[str, dict[str, float]]) -> dict[str, list[str]]:
    items: dict[str, list[str]] = {}
    for name, found in files.items():
        for item in found:
            items.setdefault(item, []).append(name)
    return items


def check_contamination(
    index: Index, data: dict[str, Path], trace: dict[str, Path], exclude: dict[str, set[str]]
) -> CheckResult:
    in_data = scan(index, data, exclude)
    in_trace = scan(index, trace, {})
    data_items, trace_items = _items(in_data["files"]), _items(in_trace["files"])
    evidence = {
        "test_items": len(index),
        "too_short_to_check": index.too_short[:MAX_LISTED],
        "window_bytes": W,
        "item_ratio": ITEM_RATIO,
        "tolerance": TOLERANCE,
        "data": {
            "items_found": len(data_items),
            "files_scanned": in_data["files_scanned"],
            "bytes_scanned": in_data["bytes_scanned"],
            "files": {
                name: {"items": len(found), "examples": sorted(found)[:10]}
                for name, found in sorted(in_data["files"].items())
            },
            "items": {i: files for i, files in sorted(data_items.items())[:MAX_LISTED]},
        },
        "trace": {
            "items_found": len(trace_items),
            "files": {name: len(found) for name, found in sorted(in_trace["files"].items())},
            "examples": sorted(trace_items)[:10],
        },
    }
    where = ", ".join(sorted(in_data["files"])[:3]) + (" ..." if len(in_data["files"]) > 3 else "")
    if len(data_items) > TOLERANCE:
        return CheckResult(
            name="contamination",
            verdict=Verdict.flag,
            confidence="high",
            summary=f"{len(data_items)} of {len(index)} test items found in data files ({where})",
            evidence=evidence,
        )
    if len(trace_items) > TOLERANCE:
        return CheckResult(
            name="contamination",
            verdict=Verdict.flag,
            confidence="low",
            summary=f"{len(trace_items)} test items appear in the agent's trace, "
            f"{len(data_items)} in data files",
            evidence=evidence,
        )
    return CheckResult(
        name="contamination",
        verdict=Verdict.passed,
        summary=f"{len(data_items)} of {len(index)} test items in {in_data['files_scanned']} data files "
        f"(tolerance {TOLERANCE}), {len(trace_items)} in the trace",
        evidence=evidence,
    )
