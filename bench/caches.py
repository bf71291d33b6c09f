"""What the harness benches share: a private PTB_HOME whose model cache grows to each size asked for
(sparse files: no disk, but as large as real weights to anything that walks or copies the cache),
and writing the JSON result."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def growing_cache(sizes_gib: list[int]) -> Iterator[tuple[int, Path]]:
    """Yield (extra GiB, a scratch directory) with the model cache of a fresh PTB_HOME holding ptb-tiny
    and one extra model of that size, smallest first."""
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PTB_HOME"] = str(Path(tmp) / "home")
        os.environ.pop("PTB_MODEL_CACHE", None)
        from posttrainbench import models, settings

        models.snapshot(models.get("ptb-tiny"), settings.model_cache())
        filler = settings.model_cache() / "models--someorg--big-model" / "snapshots" / "0"
        filler.mkdir(parents=True)
        for gib in sorted(sizes_gib):
            if gib:
                with (filler / "model.safetensors").open("wb") as f:
                    f.truncate(gib * 2**30)
            yield gib, Path(tmp)


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    print(f"wrote {path}")
