"""The copy-on-write model cache: the agent can download into and edit its view of the cache,
the shared cache stays byte-identical, and downloads.json lists what changed."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import record, run_ptb, script_agent
from posttrainbench import settings
from posttrainbench.rundir import sha256_file
from posttrainbench.sandbox.cache_layer import CacheLayer

pytestmark = pytest.mark.skipif(
    shutil.which("fuse-overlayfs") is None, reason="fuse-overlayfs is not installed"
)


def tree_hash(root):
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def test_layer_records_added_modified_deleted(tmp_path):
    shared = tmp_path / "shared"
    snap = shared / "models--org--base" / "snapshots" / "r0"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (snap / "model.safetensors").write_bytes(b"w" * 100)
    (snap / "README.md").write_text("readme")
    before = tree_hash(shared)
    layer = CacheLayer(shared, tmp_path / "agent")
    with layer.mounted() as view:
        assert view != shared and (view / "models--org--base/snapshots/r0/config.json").read_text() == "{}"
        new = view / "datasets--org--data" / "snapshots" / "r1"
        new.mkdir(parents=True)
        (new / "train.jsonl").write_text('{"q": 1}\n')
        (view / "models--org--base/snapshots/r0/config.json").write_text('{"edited": true}')
        (view / "models--org--base/snapshots/r0/README.md").unlink()
    assert tree_hash(shared) == before
    ev = layer.evidence(tmp_path / "downloads.json")
    by_repo = {r.repo_id: r for r in ev.repos}
    data = by_repo["org/data"]
    assert data.kind == "dataset" and data.revisions == ["r1"] and data.files[0].change == "added"
    changes = {f.path.rsplit("/", 1)[-1]: f.change for f in by_repo["org/base"].files}
    assert changes == {"config.json": "modified", "README.md": "deleted"}
    assert json.loads((tmp_path / "downloads.json").read_text())["layer"] == "overlay"


def test_agent_download_leaves_shared_cache_untouched(results, tmp_path):
    shared = settings.model_cache()
    before = tree_hash(shared)
    body = (
        "set -e\n"
        'src=$(ls -d "$HF_HUB_CACHE"/models--posttrainbench--ptb-tiny-base/snapshots/*)\n'
        'dst="$HF_HUB_CACHE/models--someorg--instruct/snapshots/abc123"\n'
        'mkdir -p "$dst" && cp "$src"/* "$dst"/\n'
        'echo "{}" > "$src/config.json"\n'
        'cp -r "$dst" final_model\n'
    )
    _, run = run_ptb(results, "run", "--task", "arith", "--model", "ptb-tiny", "--network", "none",
                     "--agent", "script", "--agent-config", str(script_agent(tmp_path, "dl", body)),
                     "--minutes", "1")  # fmt: skip
    assert tree_hash(shared) == before
    rec = record(run)
    assert rec["solve"]["cache_layer"] == "overlay" and rec["solve"]["end"] == "exited"
    ev = json.loads((run / "agent/downloads.json").read_text())
    repos = {r["repo_id"]: r for r in ev["repos"]}
    assert repos["someorg/instruct"]["revisions"] == ["abc123"]
    assert {f["change"] for f in repos["someorg/instruct"]["files"]} == {"added"}
    assert repos["posttrainbench/ptb-tiny-base"]["files"][0]["change"] == "modified"
    assert ev["weights_removed"] and not list((run / "agent/cache/upper").rglob("*.safetensors"))
