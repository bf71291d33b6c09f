"""The model cache as the agent sees it: a copy-on-write layer over the shared cache.

With `fuse-overlayfs` installed, the shared cache is the read-only lower layer and everything the
agent writes there (downloads, edits, deletions) lands in `RUN/agent/cache/upper`; the shared
cache is never modified. After solve, `agent/downloads.json` lists what the agent added, changed
or deleted, by repository. Without fuse-overlayfs the shared cache is bound read-only (downloads
into it then fail) and the run records that.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from pydantic import BaseModel

from posttrainbench.rundir import prune_weights, write_json_atomic

OPAQUE_MARKERS = {".wh..wh..opq", ".wh..opq"}  # fuse-overlayfs marks directories it created


class CacheFile(BaseModel):
    path: str
    bytes: int
    change: str  # added | modified | deleted


class CacheRepo(BaseModel):
    repo: str  # e.g. "models--Qwen--Qwen3-4B" (hub-cache folder name)
    repo_id: str | None  # "Qwen/Qwen3-4B" when the folder follows the hub-cache naming
    kind: str | None  # model | dataset | space
    revisions: list[str]
    bytes: int
    files: list[CacheFile]


class CacheEvidence(BaseModel):
    layer: str  # overlay | read-only
    reason: str = ""
    total_bytes: int = 0
    repos: list[CacheRepo] = []
    weights_removed: bool = False


class CacheLayer:
    """Mounts `shared` copy-on-write at `merged` for the duration of solve."""

    def __init__(self, shared: Path, agent_dir: Path):
        self.shared = shared
        self.root = self.root_of(agent_dir)
        self.upper, self.work, self.merged = self.root / "upper", self.root / "work", self.root / "merged"
        self.binary = shutil.which("fuse-overlayfs")
        self.unmount = shutil.which("fusermount3") or shutil.which("fusermount")
        paths = (self.shared, self.upper, self.work, self.merged)
        if not (self.binary and self.unmount):
            self.reason = "fuse-overlayfs is not installed: the model cache is read-only for the agent"
        elif any("," in str(p) or ":" in str(p) for p in paths):
            self.reason = "a cache path contains ',' or ':', which overlay options cannot express"
        else:
            self.reason = ""

    @staticmethod
    def root_of(agent_dir: Path) -> Path:
        return agent_dir / "cache"

    @property
    def available(self) -> bool:
        return not self.reason

    @contextmanager
    def mounted(self) -> Iterator[Path]:
        """Yield the directory the agent uses as its hub cache."""
        if not self.available:
            yield self.shared
            return
        for d in (self.upper, self.work, self.merged):
            d.mkdir(parents=True, exist_ok=True)
        options = f"lowerdir={self.shared},upperdir={self.upper},workdir={self.work}"
        mount = subprocess.run(
            [self.binary, "-o", options, str(self.merged)], capture_output=True, text=True, timeout=60
        )
        if mount.returncode != 0:
            self.reason = (
                f"fuse-overlayfs failed ({mount.stderr.strip()[:200]}): the model cache is read-only"
            )
            yield self.shared
            return
        try:
            yield self.merged
        finally:
            done = subprocess.run([self.unmount, "-u", str(self.merged)], capture_output=True, timeout=60)
            if done.returncode != 0:  # still busy: detach now, the kernel finishes when it can
                subprocess.run([self.unmount, "-uz", str(self.merged)], capture_output=True, timeout=60)

    def evidence(self, out_file: Path, remove_weights: bool = True) -> CacheEvidence:
        """List what the agent changed in the cache; then delete weight files from the upper layer."""
        if not self.available:
            ev = CacheEvidence(layer="read-only", reason=self.reason)
            write_json_atomic(out_file, ev.model_dump())
            return ev
        repos: dict[str, list[CacheFile]] = {}
        for f in sorted(self.upper.rglob("*")) if self.upper.is_dir() else []:
            info = f.lstat()
            if stat.S_ISDIR(info.st_mode):
                continue
            rel = f.relative_to(self.upper)
            if f.name in OPAQUE_MARKERS:
                continue
            if stat.S_ISCHR(info.st_mode) or f.name.startswith(".wh."):  # a deletion (whiteout)
                name = f.name.removeprefix(".wh.")
                entry = CacheFile(path=str(rel.parent / name), bytes=0, change="deleted")
            else:
                change = "modified" if (self.shared / rel).exists() else "added"
                entry = CacheFile(path=str(rel), bytes=info.st_size, change=change)
            repos.setdefault(rel.parts[0], []).append(entry)
        out = [_repo(name, files) for name, files in repos.items()]
        ev = CacheEvidence(layer="overlay", repos=out, total_bytes=sum(r.bytes for r in out))
        if remove_weights:
            ev.weights_removed = bool(prune_weights(self.upper, out_file.with_name("cache_pruned.json")))
        shutil.rmtree(self.work, ignore_errors=True)
        with suppress(OSError):  # the empty mount point; left alone if still mounted
            self.merged.rmdir()
        write_json_atomic(out_file, ev.model_dump())
        return ev


def _repo(name: str, files: list[CacheFile]) -> CacheRepo:
    kind, repo_id = None, None
    head, _, rest = name.partition("--")
    if head in ("models", "datasets", "spaces") and rest:
        kind, repo_id = head.removesuffix("s"), rest.replace("--", "/")
    revisions = sorted(
        {
            Path(f.path).parts[2]
            for f in files
            if len(Path(f.path).parts) > 3 and Path(f.path).parts[1] == "snapshots"
        }
    )
    return CacheRepo(
        repo=name,
        repo_id=repo_id,
        kind=kind,
        revisions=revisions,
        bytes=sum(f.bytes for f in files),
        files=files,
    )
