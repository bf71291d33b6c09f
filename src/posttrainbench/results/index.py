"""The SQLite index of run records: one row per run directory, read from its run.json and
agent/summary.json. The run directories stay the source of truth: `ptb index RESULTS` (re)builds
RESULTS/index.sqlite from them at any time, re-reading only the runs whose record changed."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from pydantic import ValidationError

from posttrainbench.results.schema import IndexedRun
from posttrainbench.specs import RunRecord

INDEX_FILE = "index.sqlite"
SCHEMA_VERSION = 1
LIST_FIELDS = {name for name, f in IndexedRun.model_fields.items() if f.annotation == list[str]}
BOOL_FIELDS = {name for name, f in IndexedRun.model_fields.items() if f.annotation is bool}
COLUMNS = list(IndexedRun.model_fields)
QUOTED = ", ".join(f'"{c}"' for c in COLUMNS)
FIELD_SET = frozenset(COLUMNS)


def label(agent: str, config: str, hours: float, continued: bool) -> str:
    """A leaderboard entry: the agent, the model its config names (options such as base_url left out,
    effort kept), the budget when it is not the standard 10 h, and continuation."""
    parts = [p.strip() for p in config.split(",") if p.strip()]
    shown = [p for p in parts[:1] if "=" not in p] + [p for p in parts if p.startswith("effort=")]
    name = agent + (f":{','.join(shown)}" if shown else "")
    budget = "" if hours == 10 else (f" {hours:g}h" if hours >= 1 else f" {round(hours * 60):g}min")
    return name + budget + (" +continue" if continued else "")


def read_run(results: Path, run_dir: Path) -> IndexedRun:
    rec = RunRecord.model_validate_json((run_dir / "run.json").read_text())
    spec, o = rec.spec, rec.outcome
    hours = round(spec.budget_seconds / 3600, 4)
    summary = {}
    if (run_dir / "agent" / "summary.json").is_file():
        try:
            summary = json.loads((run_dir / "agent" / "summary.json").read_text())
        except ValueError:
            summary = {}
    tokens = summary.get("tokens") or {}
    return IndexedRun(
        run_id=rec.run_id,
        path=str(run_dir.relative_to(results)),
        agent=spec.agent,
        agent_config=spec.agent_config,
        label=label(spec.agent, spec.agent_config, hours, spec.continue_until_deadline),
        task=spec.task,
        model=spec.model,
        seed=spec.seed,
        budget_hours=hours,
        continued=spec.continue_until_deadline,
        smoke=spec.eval_limit is not None,
        experiment=rec.job.experiment if rec.job else None,
        attempt=rec.job.attempt if rec.job else 1,
        created_at=rec.created_at,
        status=o.status if o else None,
        failure_class=o.failure_class.value if o and o.failure_class else None,
        flagged=bool(o and o.flagged),
        flag_reasons=rec.integrity.reasons if rec.integrity else [],
        base_score=o.base_score if o else None,
        final_score=o.final_score if o else None,
        counted_score=o.counted_score if o else None,
        minutes_used=o.minutes_used if o else None,
        input_tokens=tokens.get("input") if summary.get("events") else None,
        output_tokens=tokens.get("output") if summary.get("events") else None,
        cost_usd=summary.get("cost_usd"),
    )


def run_dirs(results: Path) -> dict[str, int]:
    """Every run directory under `results` (a directory holding run.json), as a path relative to it ->
    its run.json's mtime. Not descending into runs (a workspace may hold anything), hidden directories
    (earlier attempts live in .attempts/) or baselines/. One stat per run: a run directory's own
    contents are never listed (plain strings, not Paths: this is the hot loop of every refresh)."""
    found: dict[str, int] = {}
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(os.path.join(results, rel)) as entries:
            for e in entries:
                if e.name.startswith(".") or e.name == "baselines" or not e.is_dir(follow_symlinks=False):
                    continue
                child = f"{rel}/{e.name}" if rel else e.name
                try:
                    found[child] = os.stat(os.path.join(e.path, "run.json")).st_mtime_ns
                except FileNotFoundError:
                    stack.append(child)
    return found


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version != SCHEMA_VERSION:
        db.execute("DROP TABLE IF EXISTS runs")
        db.execute(f"CREATE TABLE runs ({QUOTED}, mtime_ns INTEGER, PRIMARY KEY (path))")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return db


def build(results: Path) -> tuple[Path, dict[str, int]]:
    """Bring RESULTS/index.sqlite up to date with the run directories; returns its path and counts
    (added, updated, removed, unchanged, unreadable)."""
    path = results / INDEX_FILE
    counts = dict.fromkeys(("added", "updated", "removed", "unchanged", "unreadable"), 0)
    with _connect(path) as db:
        known = dict(db.execute("SELECT path, mtime_ns FROM runs").fetchall())
        seen = set()
        for rel, mtime in run_dirs(results).items():
            seen.add(rel)
            if known.get(rel) == mtime:
                counts["unchanged"] += 1
                continue
            try:
                row = read_run(results, results / rel)
            except (OSError, ValueError, ValidationError):
                counts["unreadable"] += 1
                continue
            values = [_cell(k, getattr(row, k)) for k in COLUMNS] + [mtime]
            marks = ", ".join("?" * len(values))
            db.execute(f"INSERT OR REPLACE INTO runs VALUES ({marks})", values)
            counts["updated" if rel in known else "added"] += 1
        gone = set(known) - seen
        db.executemany("DELETE FROM runs WHERE path = ?", [(p,) for p in gone])
        counts["removed"] = len(gone)
    return path, counts


def _cell(key: str, value: object) -> object:
    return json.dumps(value) if key in LIST_FIELDS else value


def load(results: Path, refresh: bool = True) -> list[IndexedRun]:
    """Every indexed run (the index brought up to date first, unless refresh is False)."""
    path = build(results)[0] if refresh else results / INDEX_FILE
    with sqlite3.connect(path) as db:
        rows = db.execute(f"SELECT {QUOTED} FROM runs ORDER BY path").fetchall()
    out = []
    for row in rows:
        d = dict(zip(COLUMNS, row, strict=True))
        for k in LIST_FIELDS:
            d[k] = [] if d[k] == "[]" else json.loads(d[k])
        for k in BOOL_FIELDS:
            d[k] = bool(d[k])
        out.append(_trusted(d))
    return out


def _trusted(values: dict) -> IndexedRun:
    """An IndexedRun from a complete row this module wrote (validated when it was indexed): what
    `model_construct` does, without its per-field default handling, which costs 6x more at 100,000 runs."""
    run = IndexedRun.__new__(IndexedRun)
    object.__setattr__(run, "__dict__", values)
    object.__setattr__(run, "__pydantic_fields_set__", FIELD_SET)
    object.__setattr__(run, "__pydantic_extra__", None)
    object.__setattr__(run, "__pydantic_private__", None)
    return run
