"""The SQLite index of run records: one row per run directory, read from its run.json and
agent/summary.json. The run directories stay the source of truth: `ptb index RESULTS` (re)builds
RESULTS/index.sqlite from them at any time, re-reading only the runs whose record changed. The index
also keeps leaderboards computed from its runs, each valid for the generation of runs it was computed
from (every change of a run starts a new generation)."""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import sqlite3
from contextlib import closing
from pathlib import Path

from pydantic import ValidationError

from posttrainbench.results.schema import IndexedRun, ScoredRun
from posttrainbench.specs import RunRecord

INDEX_FILE = "index.sqlite"
SCHEMA_VERSION = 2
LIST_FIELDS = {name for name, f in IndexedRun.model_fields.items() if f.annotation == list[str]}
BOOL_FIELDS = {name for name, f in IndexedRun.model_fields.items() if f.annotation is bool}
COLUMNS = list(IndexedRun.model_fields)
QUOTED = ", ".join(f'"{c}"' for c in COLUMNS)
FIELD_SET = frozenset(COLUMNS)
SCORED = ", ".join(f'"{c}"' for c in ScoredRun._fields)


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


def run_dirs(results: Path) -> dict[str, dict[str, int]]:
    """Every run directory under `results` (a directory holding run.json), as a path relative to it ->
    its run.json's mtime, by the top-level directory it is in (or is). Not descending into runs (a
    workspace may hold anything), hidden directories (earlier attempts live in .attempts/) or
    baselines/. One stat per run, relative to its parent's descriptor: a run directory's own contents
    are never listed (plain strings, not Paths: this is the hot loop of every refresh)."""
    tops: dict[str, dict[str, int]] = {}
    stack: list[tuple[str, dict[str, int] | None]] = [("", None)]  # a directory and its top's runs
    stat = os.stat
    while stack:
        rel, found = stack.pop()
        fd = os.open(os.path.join(results, rel), os.O_RDONLY | os.O_DIRECTORY)
        try:
            with os.scandir(fd) as entries:
                for e in entries:
                    name = e.name
                    if name[0] == "." or name == "baselines" or not e.is_dir(follow_symlinks=False):
                        continue
                    child, runs = (f"{rel}/{name}", found) if rel else (name, tops.setdefault(name, {}))
                    try:
                        runs[child] = stat(f"{name}/run.json", dir_fd=fd).st_mtime_ns
                    except FileNotFoundError:
                        stack.append((child, runs))
        finally:
            os.close(fd)
    return tops


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version != SCHEMA_VERSION:
        for table in ("runs", "synced", "state", "boards"):
            db.execute(f"DROP TABLE IF EXISTS {table}")
        db.execute(f"CREATE TABLE runs ({QUOTED}, mtime_ns INTEGER, PRIMARY KEY (path)) WITHOUT ROWID")
        db.execute("CREATE TABLE synced (top TEXT PRIMARY KEY, digest TEXT)")
        db.execute("CREATE TABLE state (generation INTEGER NOT NULL)")
        db.execute("INSERT INTO state VALUES (0)")
        db.execute(
            "CREATE TABLE boards (key TEXT PRIMARY KEY, generation INTEGER NOT NULL, board TEXT NOT NULL)"
        )
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.commit()
    return db


def build(results: Path) -> tuple[Path, dict[str, int]]:
    """Bring RESULTS/index.sqlite up to date with the run directories; returns its path and counts
    (added, updated, removed, unchanged, unreadable)."""
    path = results / INDEX_FILE
    counts = dict.fromkeys(("added", "updated", "removed", "unchanged", "unreadable"), 0)
    tops = run_dirs(results)
    counts["unchanged"] = sum(map(len, tops.values()))
    # Per top-level directory the index keeps a digest of the runs and mtimes (in listing order) it
    # last brought itself in line with, every run read: where they are the same, nothing changed.
    digests = {top: hashlib.blake2b(marshal.dumps(found)).hexdigest() for top, found in tops.items()}
    with closing(_connect(path)) as db, db:
        synced = dict(db.execute("SELECT top, digest FROM synced"))
        for top in sorted(synced.keys() | digests.keys()):
            digest = digests.get(top)
            if digest is not None and synced.get(top) == digest:
                continue
            found = tops.get(top, {})
            # The top's runs: the top itself, or paths from "top/" up to "top0" ("0" follows "/").
            in_top = "SELECT path, mtime_ns FROM runs WHERE path = ? OR (path > ? AND path < ?)"
            known = dict(db.execute(in_top, (top, f"{top}/", f"{top}0")))
            unreadable = 0
            for rel, mtime in found.items():
                if known.get(rel) == mtime:
                    continue
                counts["unchanged"] -= 1
                try:
                    row = read_run(results, results / rel)
                except (OSError, ValueError, ValidationError):
                    unreadable += 1
                    continue
                values = [_cell(k, getattr(row, k)) for k in COLUMNS] + [mtime]
                marks = ", ".join("?" * len(values))
                db.execute(f"INSERT OR REPLACE INTO runs VALUES ({marks})", values)
                counts["updated" if rel in known else "added"] += 1
            gone = known.keys() - found.keys()
            db.executemany("DELETE FROM runs WHERE path = ?", [(p,) for p in gone])
            counts["removed"] += len(gone)
            counts["unreadable"] += unreadable
            if top in tops:  # with unreadable runs, no digest: they are tried again next time
                db.execute(
                    "INSERT OR REPLACE INTO synced VALUES (?, ?)", (top, None if unreadable else digest)
                )
            else:
                db.execute("DELETE FROM synced WHERE top = ?", (top,))
        if counts["added"] or counts["updated"] or counts["removed"]:
            db.execute("UPDATE state SET generation = generation + 1")
            db.execute("DELETE FROM boards")  # all of an earlier generation
    return path, counts


def _cell(key: str, value: object) -> object:
    return json.dumps(value) if key in LIST_FIELDS else value


def load(results: Path, refresh: bool = True) -> list[IndexedRun]:
    """Every indexed run (the index brought up to date first, unless refresh is False)."""
    path = build(results)[0] if refresh else results / INDEX_FILE
    with closing(sqlite3.connect(path)) as db:
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


def load_scored(results: Path, refresh: bool = True) -> list[ScoredRun]:
    """What `load` gives, in the same order, as the light rows aggregation reads (a quarter of the time)."""
    path = build(results)[0] if refresh else results / INDEX_FILE
    with closing(sqlite3.connect(path)) as db:
        return _scored(db)


def _scored(db: sqlite3.Connection) -> list[ScoredRun]:
    return list(map(ScoredRun._make, db.execute(f"SELECT {SCORED} FROM runs ORDER BY path")))


def board_or_runs(results: Path, key: str) -> tuple[int, str | None, list[ScoredRun]]:
    """The index brought up to date, then read in one transaction: its generation and the board kept
    under `key` for that generation, or without one, the runs (as load_scored gives them)."""
    path = build(results)[0]
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("BEGIN")
        (generation,) = db.execute("SELECT generation FROM state").fetchone()
        kept = db.execute("SELECT board FROM boards WHERE key = ? AND generation = ?", (key, generation))
        board = kept.fetchone()
        return (generation, board[0], []) if board else (generation, None, _scored(db))


def keep_board(results: Path, key: str, generation: int, board: str) -> None:
    """Keep a board computed from the runs of `generation` (should a run have changed since, the board
    is never read: the index is a generation further)."""
    with closing(sqlite3.connect(results / INDEX_FILE)) as db, db:
        db.execute("INSERT OR REPLACE INTO boards VALUES (?, ?, ?)", (key, generation, board))


def _trusted(values: dict) -> IndexedRun:
    """An IndexedRun from a complete row this module wrote (validated when it was indexed): what
    `model_construct` does, without its per-field default handling, which costs 6x more at 100,000 runs."""
    run = IndexedRun.__new__(IndexedRun)
    object.__setattr__(run, "__dict__", values)
    object.__setattr__(run, "__pydantic_fields_set__", FIELD_SET)
    object.__setattr__(run, "__pydantic_extra__", None)
    object.__setattr__(run, "__pydantic_private__", None)
    return run
