"""`ptb cache pull|list` with the real download code (huggingface_hub's, and the task data's) against a
local stand-in for the hub (tests/hub_server.py) that serves ptb-tiny's real files as Qwen3-1.7B-Base
and its twin's as Qwen3-1.7B: pull and list, an interrupted download resumed with a Range request, hash
mismatches refused, twins kept in their own cache, which only the instruct agent's sandbox mounts."""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import torch
from huggingface_hub import constants as hf_constants
from rich.console import Console
from safetensors.torch import load_file

from conftest import SHARED_DATA, ptb
from hub_server import HubServer, git_blob_sha1
from posttrainbench import models, settings
from posttrainbench.agents import registry
from posttrainbench.errors import UserError
from posttrainbench.lifecycle.session import mount_plan, twin_access
from posttrainbench.provision import cache
from posttrainbench.rundir import RunDir
from posttrainbench.sandbox.plan import Mount
from posttrainbench.specs import RunRecord, RunSpec

BASE, TWIN, WEIGHTS = "Qwen/Qwen3-1.7B-Base", "Qwen/Qwen3-1.7B", "model.safetensors"
ARGS = ("--models", "Qwen3-1.7B-Base", "--tasks", "aime2025")
ROW = re.compile(r"^\s*(model|twin|data)\s+\S+\s+(\S+)\s.*?\s(present|missing|partial|corrupt)\b", re.M)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def hub(ptb_home, tmp_path, monkeypatch) -> Iterator[HubServer]:
    tiny = models.get("ptb-tiny")
    base, twin = (
        models.snapshot(tiny, settings.model_cache()),
        models.twin_snapshot(tiny, settings.model_cache()),
    )
    assert twin is not None
    with HubServer() as server:
        for repo_id, path in ((BASE, base), (TWIN, twin)):
            server.add(repo_id, {p.name: p.read_bytes() for p in path.iterdir()}, lfs={WEIGHTS})
        server.static["aime2025/test.jsonl"] = (SHARED_DATA / "aime2025" / "test.jsonl").read_bytes()
        env = {
            "HF_ENDPOINT": server.url,
            "HF_HOME": tmp_path / "hf",
            "HF_HUB_DISABLE_XET": "1",
            "PTB_HOME": tmp_path / "home",
            "PTB_MODEL_CACHE": tmp_path / "models",
            "PTB_TWIN_CACHE": tmp_path / "twins",
            "PTB_DATA_MIRROR": f"{server.url}/mirror",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, str(value))
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("PTB_DATA_DIR", raising=False)
        # For pulls in this process: huggingface_hub read these at import. A small chunk size lets a
        # cut response leave part of the file on disk.
        monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(hf_constants, "DOWNLOAD_CHUNK_SIZE", 1 << 16)
        yield server


def pull(plan: cache.Plan, verify: bool = False) -> None:
    with cache.progress_bars(Console(file=io.StringIO())) as progress:
        cache.pull(plan, progress, verify)


def states(rows: list[cache.ItemStatus]) -> dict[str, str]:
    return {r.source: r.state for r in rows}


def test_pull_then_list_through_the_cli(hub, tmp_path):
    missing = ptb("cache", "list", *ARGS, check=True).stdout
    assert ROW.findall(missing) == [
        ("model", BASE, "missing"),
        ("twin", TWIN, "missing"),
        ("data", "aime2025", "missing"),
    ]
    pulled = ptb("cache", "pull", *ARGS, check=True).stdout
    assert ROW.findall(pulled) == [
        ("model", BASE, "present"),
        ("twin", TWIN, "present"),
        ("data", "aime2025", "present"),
    ]
    assert "main (unpinned) at " in pulled

    # The twin is in the twin cache only; the lineage check and the instruct agent find it there.
    models_dir, twins_dir = tmp_path / "models", tmp_path / "twins"
    assert sorted(p.name for p in models_dir.glob("models--*")) == ["models--Qwen--Qwen3-1.7B-Base"]
    assert sorted(p.name for p in twins_dir.glob("models--*")) == ["models--Qwen--Qwen3-1.7B"]
    card = models.get("Qwen3-1.7B-Base")
    base, twin = models.snapshot(card, models_dir), models.twin_snapshot(card, models_dir)
    assert twin is not None and twin.is_relative_to(twins_dir)
    for repo_id, path in ((BASE, base), (TWIN, twin)):
        assert {p.name: p.read_bytes() for p in path.iterdir()} == hub.repos["model", repo_id].files
    assert (tmp_path / "home" / "data" / "aime2025" / "test.jsonl").is_file()

    workspace = tmp_path / "workspace"
    workspace.mkdir()
    agent_env = {
        "PTB_MODEL": BASE,
        "PTB_TASK": "gsm8k",
        "PTB_DEADLINE": str(time.time() + 600),
        "HF_HUB_CACHE": str(models_dir),
        "HF_HUB_OFFLINE": "1",
    }
    subprocess.run(
        [sys.executable, "-m", "posttrainbench.agents.builtin.instruct"],
        cwd=workspace,
        env={**os.environ, **agent_env},
        check=True,
        capture_output=True,
    )
    submitted, original = load_file(workspace / "final_model" / WEIGHTS), load_file(twin / WEIGHTS)
    assert submitted.keys() == original.keys()
    assert all(torch.equal(submitted[k], original[k]) for k in original)


def test_interrupted_download_resumes_with_a_range_request(hub, tmp_path):
    plan = cache.plan(["Qwen3-1.7B-Base"], [])
    hub.interrupt(BASE, WEIGHTS, after=1_000_000)
    with pytest.raises(UserError, match="503"):
        pull(plan)
    blob = sha256(hub.repos["model", BASE].files[WEIGHTS])
    partial = tmp_path / "models" / "models--Qwen--Qwen3-1.7B-Base" / "blobs" / f"{blob}.incomplete"
    kept = partial.stat().st_size
    assert 0 < kept <= 1_000_000
    listed = cache.status(plan)
    assert states(listed) == {BASE: "partial", TWIN: "present"}
    assert "1 partial download(s)" in listed[0].detail

    hub.requests.clear()
    pull(plan)
    gets = [
        r.range
        for r in hub.requests
        if r.method == "GET" and r.path == f"/{BASE}/resolve/{hub.repos['model', BASE].commit}/{WEIGHTS}"
    ]
    assert gets == [f"bytes={kept}-"]
    assert not partial.exists() and (partial.parent / blob).is_file()
    assert states(cache.status(plan, verify=True)) == {BASE: "present", TWIN: "present"}


def test_hash_mismatches_are_refused_and_removed(hub, tmp_path):
    plan = cache.plan(["Qwen3-1.7B-Base"], [])
    repo = tmp_path / "models" / "models--Qwen--Qwen3-1.7B-Base"
    served = hub.repos["model", BASE].files
    hub.corrupt(BASE, WEIGHTS)
    with pytest.raises(UserError) as refused:
        pull(plan)
    wrong = bytes(b ^ 0xFF for b in served[WEIGHTS])
    assert f"{WEIGHTS} (at {hub.repos['model', BASE].commit}) has sha256 {sha256(wrong)}" in str(
        refused.value
    )
    assert f"the hub's is {sha256(served[WEIGHTS])}" in str(refused.value)
    assert list(repo.glob("blobs/*")) == []  # neither the file nor a partial download is kept
    assert states(cache.status(plan)) == {BASE: "missing", TWIN: "present"}

    # A small (non-LFS) file is checked against its git blob id.
    hub.corrupted.clear()
    hub.corrupt(BASE, "config.json")
    with pytest.raises(UserError) as refused:
        pull(plan)
    wrong = bytes(b ^ 0xFF for b in served["config.json"])
    assert (
        f"config.json (at {hub.repos['model', BASE].commit}) has git blob sha1 {git_blob_sha1(wrong)}"
        in str(refused.value)
    )
    assert git_blob_sha1(served["config.json"]) in str(refused.value)
    listed = cache.status(plan)
    assert states(listed) == {BASE: "partial", TWIN: "present"} and "1 of 6 files missing" in listed[0].detail

    hub.corrupted.clear()
    pull(plan)
    assert states(cache.status(plan, verify=True)) == {BASE: "present", TWIN: "present"}
    # Spoiled on disk afterwards (same size): only hashing finds it, and `pull --verify` repairs it.
    (repo / "blobs" / sha256(served[WEIGHTS])).write_bytes(bytes(len(served[WEIGHTS])))
    assert states(cache.status(plan)) == {BASE: "present", TWIN: "present"}
    assert states(cache.status(plan, verify=True)) == {BASE: "corrupt", TWIN: "present"}
    pull(plan, verify=True)
    assert states(cache.status(plan, verify=True)) == {BASE: "present", TWIN: "present"}


def test_only_the_instruct_agent_sees_the_twin_cache(monkeypatch, tmp_path, ptb_home):
    twins = tmp_path / "twins"
    twins.mkdir()
    monkeypatch.setenv("PTB_TWIN_CACHE", str(twins))
    spec = RunSpec(task="gsm8k", model="Qwen3-1.7B-Base", agent="instruct", budget_seconds=60)
    card = models.get("Qwen3-1.7B-Base")
    record = RunRecord(run_id="r", spec=spec, model_card=card, results_root=str(tmp_path / "results"))
    run, hub_cache = RunDir(tmp_path / "results" / "r"), tmp_path / "models"
    twin_mount = Mount(kind="ro", source=str(twins), target=str(twins))
    for agent, sees in (("instruct", True), ("noop", False), ("cheat-twin", False), ("reference", False)):
        env, mounts = twin_access(registry.get(agent))
        plan = mount_plan(run, record, env, hub_cache, hub_cache, mounts, [])
        assert (twin_mount in plan.mounts, plan.env.get("PTB_TWIN_CACHE") == str(twins)) == (sees, sees), (
            agent
        )
        assert sees or all(m.source != str(twins) for m in plan.mounts), agent
