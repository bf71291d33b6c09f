"""collect: copy `final_model/` out of the workspace, hash it, and decide whether it is loadable.

Loadability is judged without executing anything from the submission: `config.json` must name a
supported architecture, weights must be safetensors with readable headers, a tokenizer must be
present. The workspace's `final_model/` is moved (not copied) to RUN_DIR/final_model, and model weights elsewhere in the workspace (checkpoints, downloads) are deleted and listed in
`workspace_pruned.json`, so run directories stay small.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from posttrainbench import models
from posttrainbench.rundir import WEIGHT_SUFFIXES, RunDir, prune_weights, sha256_file
from posttrainbench.specs import FinalModelInfo, FinalModelState

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


def collect(run: RunDir) -> FinalModelInfo:
    with run.stage("collect"):
        submitted = run.workspace / "final_model"
        if submitted.is_dir() and any(submitted.iterdir()):
            # Same file system: a rename moves gigabytes of weights without copying them.
            shutil.rmtree(run.final_model, ignore_errors=True)
            submitted.rename(run.final_model)
        # else: nothing was submitted, or this is a re-run: judge what was collected before.
        info = inspect_final_model(run.final_model)
        prune_weights(run.workspace, run.path / "workspace_pruned.json")
        record = run.load()
        record.final_model = info
        run.save(record)
        return info


def inspect_final_model(path: Path) -> FinalModelInfo:
    if not path.is_dir() or not any(path.iterdir()):
        return FinalModelInfo(state=FinalModelState.missing, reason="no final_model/ in the workspace")
    links = [str(p.relative_to(path)) for p in path.rglob("*") if p.is_symlink()]
    if links:
        return FinalModelInfo(
            state=FinalModelState.unloadable,
            reason=f"final_model/ contains symbolic links ({', '.join(sorted(links)[:3])}); submit real files",
        )
    files = {str(p.relative_to(path)): sha256_file(p) for p in sorted(path.rglob("*")) if p.is_file()}
    tree = hashlib.sha256("".join(f"{k}\0{v}\n" for k, v in files.items()).encode()).hexdigest()
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    common = dict(
        sha256=tree,
        files=files,
        bytes=size,
        has_generation_config=(path / "generation_config.json").is_file(),
    )
    reason = _unloadable_reason(path)
    if reason:
        return FinalModelInfo(state=FinalModelState.unloadable, reason=reason, **common)
    return FinalModelInfo(state=FinalModelState.ok, **common)


def _unloadable_reason(path: Path) -> str:
    try:
        config = json.loads((path / "config.json").read_text())
    except FileNotFoundError:
        return "final_model/config.json is missing"
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return f"final_model/config.json is not valid JSON: {e}"
    try:
        models.family_of(path)
    except ValueError as e:
        return str(e)
    if config.get("auto_map"):
        return "config.json asks for remote code (auto_map); remote code is never executed"
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        others = [p.name for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES]
        if others:
            return f"weights are not safetensors ({', '.join(others)}); pickled weights are not loaded"
        return "no weights (*.safetensors) in final_model/"
    from safetensors import safe_open

    for w in weights:
        try:
            with safe_open(str(w), framework="pt") as f:
                list(f.keys())
        except Exception as e:
            return f"{w.name} is not a readable safetensors file: {e}"
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        return "no tokenizer files (tokenizer.json / tokenizer_config.json) in final_model/"
    return ""
