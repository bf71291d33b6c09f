"""Where posttrainbench keeps things on this machine, overridable by environment variables.

- `PTB_HOME` (default `~/.cache/posttrainbench`): the harness's own state.
- `PTB_MODEL_CACHE` (default `$PTB_HOME/hub`): a Hugging Face hub-cache directory holding the base
  models; agents see it read-only as `HF_HUB_CACHE`. Locally built models (`ptb-tiny`) are
  registered here on first use.
"""

from __future__ import annotations

import os
from pathlib import Path


def ptb_home() -> Path:
    return Path(os.environ.get("PTB_HOME") or Path.home() / ".cache" / "posttrainbench")


def model_cache() -> Path:
    return Path(os.environ.get("PTB_MODEL_CACHE") or ptb_home() / "hub")
