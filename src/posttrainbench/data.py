"""Benchmark data: where each task's files come from, verified by sha256.

Two sources, same bytes:
- a local data directory (`--data-dir DIR` or `PTB_DATA_DIR`) laid out as `DIR/<task data folder>/<file>`
  (the layout of the project's shared data copies); nothing is fetched, so evaluation makes no network access;
- otherwise the pinned upstream file (a raw URL at a fixed commit), downloaded once into
  `$PTB_HOME/data/<folder>/` (or from `PTB_DATA_MIRROR/<folder>/<file>` when set, for offline mirrors).

Either way every file is checked against the sha256 the task pins, so a score always names exactly
what it was computed on.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from pydantic import BaseModel

from posttrainbench import settings
from posttrainbench.errors import UserError

DATA_DIR_ENV = "PTB_DATA_DIR"
MIRROR_ENV = "PTB_DATA_MIRROR"
DOWNLOAD_TIMEOUT_S = 120


class DataFile(BaseModel):
    """One file a task reads, relative to the task's data folder, pinned by content."""

    path: str
    url: str
    sha256: str


class DataFileRecord(BaseModel):
    path: str
    sha256: str
    url: str


class DataRecord(BaseModel):
    """What `metrics.json` says about the data: where it was read from and what exactly it was."""

    source: str  # "local" or "download"
    location: str
    files: list[DataFileRecord]


class TaskData:
    """A task's resolved, verified data files."""

    def __init__(self, root: Path, record: DataRecord):
        self.root = root
        self.record = record

    def path(self, rel: str) -> Path:
        return self.root / rel


def data_dir(explicit: Path | None = None) -> Path | None:
    if explicit is not None:
        return explicit
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve(folder: str, files: tuple[DataFile, ...], local_dir: Path | None = None) -> TaskData:
    """Locate (or download) and verify a task's files."""
    local = data_dir(local_dir)
    if local is not None:
        root = local / folder
        for f in files:
            if not (root / f.path).is_file():
                raise UserError(
                    f"{root / f.path} is missing: the data directory {local} must hold "
                    f"<task folder>/<file> as in the project's shared data (unset {DATA_DIR_ENV} or drop "
                    "--data-dir to download the pinned files instead)"
                )
        source = "local"
    else:
        root = settings.ptb_home() / "data" / folder
        for f in files:
            target = root / f.path
            if not target.is_file() or _sha256(target) != f.sha256:
                _download(folder, f, target)
        source = "download"
    records = []
    for f in files:
        actual = _sha256(root / f.path)
        if actual != f.sha256:
            raise UserError(
                f"{root / f.path} has sha256 {actual}, not the pinned {f.sha256}: this is not the benchmark's "
                "data file; replace it with the original"
            )
        records.append(DataFileRecord(path=f.path, sha256=actual, url=f.url))
    return TaskData(root, DataRecord(source=source, location=str(root), files=records))


def _download(folder: str, f: DataFile, target: Path) -> None:
    mirror = os.environ.get(MIRROR_ENV)
    url = f"{mirror.rstrip('/')}/{folder}/{f.path}" if mirror else f.url
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, tmp.open("wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError) as e:
        tmp.unlink(missing_ok=True)
        raise UserError(
            f"could not download {url} ({e}); without network, point --data-dir or {DATA_DIR_ENV} at a local "
            "copy of the data (see the README)"
        ) from None
    tmp.replace(target)


def read_jsonl(path: Path) -> list[dict]:
    """Records of a JSON Lines file (gzip-compressed when the name ends in .gz)."""
    import gzip
    import json

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
