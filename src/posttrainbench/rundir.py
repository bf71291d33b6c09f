"""The run directory: its layout, atomic writes of `run.json`, file hashing and weight pruning."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from posttrainbench.errors import UserError
from posttrainbench.redact import Redactor
from posttrainbench.specs import RunRecord, StageTiming, utcnow

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf")


class RunDir:
    """Paths inside one run directory (see docs in the README for the layout)."""

    def __init__(self, path: Path):
        self.path = path.resolve()

    record_file = property(lambda self: self.path / "run.json")
    prompt_file = property(lambda self: self.path / "prompt.txt")
    workspace = property(lambda self: self.path / "workspace")
    agent_dir = property(lambda self: self.path / "agent")
    agent_home = property(lambda self: self.path / "agent" / "home")
    agent_log = property(lambda self: self.path / "agent" / "output.log")
    final_model = property(lambda self: self.path / "final_model")
    integrity_file = property(lambda self: self.path / "integrity.json")
    metrics_file = property(lambda self: self.path / "metrics.json")
    eval_dir = property(lambda self: self.path / "eval")

    @classmethod
    def existing(cls, path: Path) -> RunDir:
        run = cls(path)
        if not run.record_file.is_file():
            raise UserError(f"{path} is not a run directory (no run.json); create one with `ptb run`")
        return run

    def load(self) -> RunRecord:
        return RunRecord.model_validate_json(self.record_file.read_text())

    def save(self, record: RunRecord) -> None:
        write_json_atomic(self.record_file, record.model_dump(mode="json"))

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage and note its outcome in run.json, also when it fails."""
        started_at, t0 = utcnow(), time.monotonic()
        error = ""
        try:
            yield
        except BaseException as e:
            error = Redactor.from_environment()(f"{type(e).__name__}: {e}")
            raise
        finally:
            record = self.load()
            record.stages[name] = StageTiming(
                started_at=started_at, seconds=round(time.monotonic() - t0, 3), ok=not error, error=error
            )
            self.save(record)


def write_json_atomic(path: Path, data: object) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hash_tree(root: Path, rel_paths: list[str]) -> dict[str, str]:
    """relative path -> sha256 ('missing' when absent) for the given files under root."""
    return {p: sha256_file(root / p) if (root / p).is_file() else "missing" for p in rel_paths}


def prune_weights(root: Path, manifest: Path) -> list[dict]:
    """Delete model-weight files under root; append path, size and hash of each to manifest."""
    pruned = json.loads(manifest.read_text()) if manifest.is_file() else []
    for f in sorted(root.rglob("*")) if root.is_dir() else []:
        if f.is_file() and not f.is_symlink() and f.suffix in WEIGHT_SUFFIXES:
            pruned.append(
                {"path": str(f.relative_to(root)), "bytes": f.stat().st_size, "sha256": sha256_file(f)}
            )
            f.unlink()
    write_json_atomic(manifest, pruned)
    return pruned
