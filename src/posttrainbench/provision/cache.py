"""The model and data cache: what a set of base models and tasks needs (each base model and its instruct
twin at their revisions, each task's sha256-pinned data files), `pull` to download it, and `status` to
say what is present, missing, partial or corrupt.

Downloads use huggingface_hub's own code against `HF_ENDPOINT`. Its 2.x client discards a partial file,
so LFS files (the weights) are fetched here with its `http_get` into `blobs/<sha256>.incomplete`, which
the next pull continues with an HTTP Range request; each is checked against the sha256 the hub's tree
listing gives before it becomes the blob. `snapshot_download` then lays the snapshot out around those
blobs and fetches the small files, which are checked against their git blob ids. A file that fails its
check is removed, and the pull fails naming it and both hashes.

Instruct twins go to the twin cache (`settings.twin_cache()`), which agents' sandboxes do not mount
(the instruct baseline's excepted).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import httpx2
from huggingface_hub import HfApi, get_cached_repo_tree, hf_hub_url, snapshot_download
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import CachedRepoTreeNotFoundError, RevisionResolutionError
from huggingface_hub.file_download import http_get, repo_folder_name
from huggingface_hub.hf_api import RepoFile
from huggingface_hub.utils import WeakFileLock, build_hf_headers
from huggingface_hub.utils import tqdm as hf_tqdm
from pydantic import BaseModel, ConfigDict
from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from posttrainbench import data, models, settings
from posttrainbench.data import DataFile
from posttrainbench.errors import UserError

COMMIT = re.compile(r"[0-9a-f]{40}")
PARTIAL = re.compile(r"[0-9a-f]{64}\.incomplete")  # ours; huggingface_hub's own never resume
State = Literal["present", "missing", "partial", "corrupt"]


class HubItem(BaseModel):
    """A model repository the cache needs: a base model or its instruct twin."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["model", "twin"]
    model: str  # the base model's name
    repo_id: str
    revision: str | None  # None: unpinned (the default branch)
    cache: Path
    built_locally: bool = False

    @property
    def ref(self) -> str:
        return self.revision or "main"

    @property
    def storage(self) -> Path:
        return self.cache / repo_folder_name(repo_id=self.repo_id, repo_type="model")

    def revision_label(self) -> str:
        if self.built_locally:
            return "built locally"
        return self.ref if COMMIT.fullmatch(self.ref) else f"{self.ref} (unpinned)"


class DataItem(BaseModel):
    """A task's data files, each pinned by its sha256."""

    model_config = ConfigDict(frozen=True)

    task: str
    folder: str
    files: tuple[DataFile, ...]
    root: Path  # where they are read from (data.resolve)


class Plan(BaseModel):
    model_cache: Path
    twin_cache: Path
    data_dir: Path  # a local data directory (PTB_DATA_DIR), or where the downloads go
    hub: list[HubItem]
    data: list[DataItem]


class ItemStatus(BaseModel):
    kind: Literal["model", "twin", "data"]
    name: str  # the base model, or the task
    source: str  # the hub repository, or the task's data folder
    revision: str
    state: State
    detail: str = ""
    location: str


def plan(
    model_names: list[str] | None = None,
    task_names: list[str] | None = None,
    model_cache: Path | None = None,
    twin_cache: Path | None = None,
) -> Plan:
    """What the models and tasks need (None: the real base models, the tasks that have data files)."""
    from posttrainbench import tasks  # inspect: imported where used

    if model_names is None:
        cards = [c for c in models.MODELS.values() if not c.built_locally]
    else:
        cards = [models.get(n) for n in model_names]
    model_cache = model_cache or settings.model_cache()
    twin_cache = twin_cache or settings.twin_cache()
    hub = []
    for card in cards:
        hub.append(HubItem(kind="model", model=card.name, repo_id=card.hub_id, revision=card.revision,
                           cache=model_cache, built_locally=card.built_locally))  # fmt: skip
        if card.instruct_twin:
            # A locally built twin is built next to its base (models.twin_snapshot).
            hub.append(HubItem(kind="twin", model=card.name, repo_id=card.instruct_twin,
                               revision=card.instruct_revision, built_locally=card.built_locally,
                               cache=model_cache if card.built_locally else twin_cache))  # fmt: skip
    chosen = tasks.all_tasks() if task_names is None else [tasks.get(n) for n in task_names]
    data_dir = data.data_dir() or settings.ptb_home() / "data"
    items = []
    for t in chosen:
        folder = t.data_folder or t.info.name
        if t.data_files:
            items.append(
                DataItem(task=t.info.name, folder=folder, files=t.data_files, root=data_dir / folder)
            )
    return Plan(model_cache=model_cache, twin_cache=twin_cache, data_dir=data_dir, hub=hub, data=items)


def progress_bars(console: Console) -> Progress:
    """A bar per download and per verification (in bytes), a line per other step."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        *[_BytesOnly(c) for c in (DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())],
        console=console,
    )


def pull(p: Plan, progress: Progress, verify: bool = False) -> None:
    """Download what is not in the cache yet and check it; `verify`: re-check what is there too (and
    download again what fails). Every item is tried; raises UserError naming each one that failed."""
    if hf_constants.HF_HUB_OFFLINE and any(not i.built_locally for i in p.hub):
        raise UserError("HF_HUB_OFFLINE is set: unset it to download from the hub")
    # huggingface_hub reads HF_ENDPOINT once, at import; this reads it when pulling.
    endpoint = os.environ.get("HF_ENDPOINT") or None
    failures = []
    for item in p.hub:
        try:
            _pull_repo(item, endpoint, progress, verify)
        except (UserError, httpx2.HTTPError, OSError, RevisionResolutionError) as e:
            failures.append(f"{item.repo_id} ({item.kind} of {item.model}): {str(e).strip().splitlines()[0]}")
    for d in p.data:
        try:
            with _step(progress, f"data of {d.task}"):
                data.resolve(d.folder, d.files)
        except UserError as e:
            failures.append(f"data of {d.task}: {e}")
    if failures:
        raise UserError(f"{len(failures)} item(s) could not be pulled:\n  " + "\n  ".join(failures))


def status(p: Plan, verify: bool = False) -> list[ItemStatus]:
    """What each item of the plan has in the cache; `verify`: hash every file (else model files are
    checked by size against the hub's listing; data files are always hashed, they are small)."""
    return [_repo_status(i, verify) for i in p.hub] + [_data_status(d) for d in p.data]


def _pull_repo(item: HubItem, endpoint: str | None, progress: Progress, verify: bool) -> None:
    if item.built_locally:
        with _step(progress, f"build {item.repo_id}"):
            card = models.get(item.model)
            (models.snapshot if item.kind == "model" else models.twin_snapshot)(card, item.cache)
        return
    api = HfApi(endpoint=endpoint)
    revision = api.resolve_revision(item.repo_id, revision=item.ref, cache_dir=item.cache)
    commit = revision.resolved
    files = [
        f
        for f in api.list_repo_tree(item.repo_id, recursive=True, revision=commit)
        if isinstance(f, RepoFile)
    ]
    snapshot = item.storage / "snapshots" / commit
    present = set()
    for f in files:
        pointer = snapshot / f.path
        if pointer.exists():
            if pointer.stat().st_size == f.size and (
                not verify or _digest(pointer, _expected(f)) == _expected(f)
            ):
                present.add(f.path)
            else:
                _remove(pointer)  # downloaded again below
    fetched = set()
    for f in files:
        if (
            f.lfs is not None
            and f.path not in present
            and not (item.storage / "blobs" / f.lfs.sha256).exists()
        ):
            _fetch_lfs(item, commit, f, endpoint, progress)
            fetched.add(f.lfs.sha256)
    with _step(progress, f"{item.repo_id}: {len(files)} files"):
        snapshot_download(
            item.repo_id, revision=revision, cache_dir=item.cache, endpoint=endpoint, tqdm_class=_Quiet
        )
    unchecked = [f for f in files if f.path not in present and _expected(f) not in fetched]
    total = sum(f.size for f in unchecked)
    task = progress.add_task(f"verify {item.repo_id}", total=total, bytes=True, visible=bool(unchecked))
    for f in unchecked:
        pointer = snapshot / f.path
        actual = _digest(pointer, _expected(f), lambda n: progress.advance(task, n))
        if actual != _expected(f):
            _remove(pointer)
            raise UserError(_mismatch(item, commit, f, actual))


def _fetch_lfs(item: HubItem, commit: str, f: RepoFile, endpoint: str | None, progress: Progress) -> None:
    """Download one LFS file into its blob, continuing a partial download, and check its sha256."""
    assert f.lfs is not None
    blob = item.storage / "blobs" / f.lfs.sha256
    partial = blob.with_name(blob.name + ".incomplete")
    lock = item.cache / ".locks" / item.storage.name / f"{f.lfs.sha256}.lock"  # huggingface_hub's own
    blob.parent.mkdir(parents=True, exist_ok=True)
    lock.parent.mkdir(parents=True, exist_ok=True)
    task = progress.add_task(f"{item.repo_id}/{f.path}", total=f.lfs.size, bytes=True)
    with WeakFileLock(lock), partial.open("ab") as out:
        if out.tell() > f.lfs.size:  # not a prefix of this file: start again
            out.truncate(0)
            out.seek(0)
        http_get(
            hf_hub_url(item.repo_id, f.path, revision=commit, endpoint=endpoint),
            out,
            resume_size=out.tell(),
            headers=build_hf_headers(),
            expected_size=f.lfs.size,
            tqdm_class=_bar(progress, task),
        )
    actual = _digest(partial, f.lfs.sha256)
    if actual != f.lfs.sha256:
        partial.unlink()
        raise UserError(_mismatch(item, commit, f, actual))
    partial.replace(blob)


def _mismatch(item: HubItem, commit: str, f: RepoFile, actual: str) -> str:
    kind = "sha256" if f.lfs is not None else "git blob sha1"
    return (
        f"{f.path} (at {commit}) has {kind} {actual}, but the hub's is {_expected(f)}: "
        f"removed it from {item.cache}"
    )


def _expected(f: RepoFile) -> str:
    return f.lfs.sha256 if f.lfs is not None else f.blob_id


def _digest(path: Path, like: str, advance: Callable[[int], object] = lambda n: None) -> str:
    """The file's hash in the form of `like`: sha256 (64 hex digits; LFS files, named so in the
    cache's blobs) or git's blob sha1 (40; the other files)."""
    h = hashlib.sha256() if len(like) == 64 else hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
            advance(len(block))
    return h.hexdigest()


def _remove(pointer: Path) -> None:
    """A snapshot file and the blob it links to."""
    blob = pointer.resolve()
    pointer.unlink()
    blob.unlink(missing_ok=True)


def _repo_status(item: HubItem, verify: bool) -> ItemStatus:
    ref = item.storage / "refs" / item.ref
    commit = ref.read_text().strip() if ref.is_file() else item.ref
    snapshot = item.storage / "snapshots" / commit
    partials = [p for p in item.storage.glob("blobs/*.incomplete") if PARTIAL.fullmatch(p.name)]
    notes = [f"{len(partials)} partial download(s), resumed by pull"] if partials else []
    state: State
    if not snapshot.is_dir():
        state = "partial" if partials else "missing"
    else:
        listing = _listing(item, commit, snapshot)
        missing = [p for p in listing if not (snapshot / p).is_file()]
        corrupt = [p for p in listing if p not in missing and (snapshot / p).stat().st_size != listing[p]]
        if verify:
            # Each blob is named by the hash the hub gave for it (its ETag).
            for p in sorted(set(listing) - set(missing) - set(corrupt)):
                name = (snapshot / p).resolve().name
                if re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", name) and _digest(snapshot / p, name) != name:
                    corrupt.append(p)
        if corrupt:
            state, notes = "corrupt", ["wrong content: " + ", ".join(corrupt), *notes]
        elif missing or "config.json" not in listing:
            state, notes = "partial", [f"{len(missing)} of {len(listing)} files missing", *notes]
        else:
            gigabytes = sum(listing.values()) / 1e9
            state, notes = "present", [f"{len(listing)} files, {gigabytes:.2f} GB", *(["verified"] * verify)]
    revision = item.revision_label()
    if ref.is_file() and commit != item.ref:
        revision += f" at {commit[:12]}"
    return ItemStatus(kind=item.kind, name=item.model, source=item.repo_id, revision=revision, state=state,
                      detail=", ".join(notes), location=str(snapshot if snapshot.is_dir() else item.storage))  # fmt: skip


def _listing(item: HubItem, commit: str, snapshot: Path) -> dict[str, int]:
    """The snapshot's files and sizes: the hub's tree listing that the download cached, else (a model
    built locally or downloaded by other means) what the snapshot holds."""
    try:
        return {
            f.path: f.size for f in get_cached_repo_tree(item.repo_id, revision=commit, cache_dir=item.cache)
        }
    except CachedRepoTreeNotFoundError:
        return {str(p.relative_to(snapshot)): p.stat().st_size for p in snapshot.rglob("*") if p.is_file()}


def _data_status(item: DataItem) -> ItemStatus:
    missing = [f.path for f in item.files if not (item.root / f.path).is_file()]
    corrupt = [
        f.path
        for f in item.files
        if f.path not in missing and _digest(item.root / f.path, f.sha256) != f.sha256
    ]
    state: State
    if corrupt:
        state, detail = "corrupt", "wrong content: " + ", ".join(corrupt)
    elif missing:
        state = "missing" if len(missing) == len(item.files) else "partial"
        detail = "" if state == "missing" else f"{len(missing)} of {len(item.files)} files missing"
    else:
        state, detail = "present", f"{len(item.files)} files, verified"
    return ItemStatus(kind="data", name=item.task, source=item.folder, revision="pinned (sha256)",
                      state=state, detail=detail, location=str(item.root))  # fmt: skip


@contextmanager
def _step(progress: Progress, description: str) -> Iterator[None]:
    task = progress.add_task(description, total=None)
    yield
    progress.update(task, total=1, completed=1)


class _BytesOnly(ProgressColumn):
    """A column of the download and verify bars, blank on the other steps' lines."""

    def __init__(self, column: ProgressColumn):
        super().__init__()
        self.column = column

    def render(self, task: Task) -> RenderableType:
        return self.column.render(task) if task.fields.get("bytes") else ""


class _Quiet(hf_tqdm):
    """huggingface_hub's own progress bars, kept quiet: `pull` draws its own."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{**kwargs, "disable": True})


def _bar(progress: Progress, task: TaskID) -> type:
    """The tqdm class huggingface_hub's `http_get` drives, drawn as `task`."""

    class Bar:
        def __init__(self, *, total: int | None = None, initial: int = 0, **_):
            progress.update(task, total=total, completed=initial)

        def __enter__(self) -> Bar:
            return self

        def __exit__(self, *exc) -> None:
            return None

        def update(self, n: int = 1) -> None:
            progress.advance(task, n)

    return Bar
