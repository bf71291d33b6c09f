"""The disallowed-downloads check: models of the base's family other than the base itself (its
instruct twin above all) and the benchmark's test set, from the model cache's download evidence
(`agent/downloads.json`) and from the agent's tool calls (`load_dataset(...)`, `hf download`, URLs).

A download alone is not proof of cheating (a twin may be fetched and never used; the lineage check
decides what was submitted, the contamination check what was trained on), so flags are low
confidence: evidence for the judges and readers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from posttrainbench.integrity.trace_text import excerpt, trace_entries
from posttrainbench.specs import CheckResult, ModelCard, TaskInfo, Verdict

# How a family's repositories are named on the hub (lower case).
FAMILY_NAMES = {"qwen3": ("qwen3",), "smollm3": ("smollm3",), "gemma3": ("gemma-3", "gemma3")}
MAX_LISTED = 20


def _pattern(name: str) -> re.Pattern[str]:
    # Whole ids only: `Qwen/Qwen3-1.7B` must not match inside `Qwen/Qwen3-1.7B-Base`.
    return re.compile(r"(?<![\w.-])" + re.escape(name) + r"(?![\w-])", re.IGNORECASE)


def _family_model(repo_id: str, card: ModelCard) -> bool:
    lowered = repo_id.lower()
    if lowered == card.hub_id.lower():
        return False
    return lowered == (card.instruct_twin or "").lower() or any(
        n in lowered for n in FAMILY_NAMES.get(card.family, ())
    )


def _test_set_files(repo: dict, entry: str) -> list[str]:
    repo_id, _, fragment = entry.partition(":")
    if (repo.get("repo_id") or "").lower() != repo_id.lower():
        return []
    files = [f["path"] for f in repo.get("files", []) if f.get("change") != "deleted"]
    return [f for f in files if fragment.lower() in f.lower()] if fragment else files


def check_downloads(downloads: Path, agent_dir: Path, card: ModelCard, task: TaskInfo) -> CheckResult:
    evidence = json.loads(downloads.read_text()) if downloads.is_file() else {}
    repos = evidence.get("repos", [])
    models = [
        r["repo_id"] for r in repos if r.get("kind") == "model" and _family_model(r["repo_id"] or "", card)
    ]
    test_sets, shared = {}, {}
    for r in repos:
        for entry in task.test_sets:
            if files := _test_set_files(r, entry):
                # A repository that also holds allowed data (GSM8K's train split) is downloaded
                # whole by `load_dataset`: its test files are listed, not flagged.
                (shared if ":" in entry else test_sets)[r["repo"]] = files[:MAX_LISTED]
    # In the tool calls: the twin by its exact id, the test set's ids and URL fragments.
    wanted = [t for t in task.test_sets if ":" not in t]
    wanted += [card.instruct_twin] if card.instruct_twin else []
    mentions = []
    calls, _ = trace_entries(agent_dir)
    for name in wanted:
        pattern = _pattern(name)
        for entry in calls:
            if m := pattern.search(entry.text):
                mentions.append(
                    {"name": name, "where": entry.where, "excerpt": excerpt(entry.text, m.start(), m.end())}
                )
    found = {
        "family_models_downloaded": sorted(set(models)),
        "test_set_files_downloaded": test_sets,
        "test_set_files_in_allowed_repos": shared,
        "tool_calls_naming_them": mentions[:MAX_LISTED],
        "cache_layer": evidence.get("layer", "unknown"),
    }
    what = [
        *(f"model {m}" for m in sorted(set(models))),
        *(f"test set files in {r}" for r in test_sets),
        *sorted({f"tool calls name {m['name']}" for m in mentions}),
    ]
    if what:
        return CheckResult(
            name="downloads",
            verdict=Verdict.flag,
            confidence="low",
            summary="; ".join(what[:5]),
            evidence=found,
        )
    return CheckResult(
        name="downloads",
        verdict=Verdict.passed,
        summary=f"no other {card.family} model or test set among {len(repos)} downloaded repositories",
        evidence=found,
    )
