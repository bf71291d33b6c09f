"""Where posttrainbench keeps things on this machine: the paths of the configuration (provision/config.py:
environment variables > .env > project ptb.toml > user ptb.toml > these defaults).

- `PTB_HOME` ([paths] ptb_home; default `~/.cache/posttrainbench`): the harness's own state.
- `PTB_MODEL_CACHE` ([paths] model_cache; default `$PTB_HOME/hub`): a Hugging Face hub-cache
  directory holding the base models; agents see it read-only as `HF_HUB_CACHE`. Locally built models
  (`ptb-tiny`) are registered here on first use.
- `PTB_TWIN_CACHE` ([paths] twin_cache; default `$PTB_HOME/twins`): a hub-cache directory holding the
  instruct twins (for the instruct baseline and the lineage check), apart from the model cache so that
  agents cannot read them; only the `instruct` baseline agent sees it (read-only).
"""

from __future__ import annotations

from pathlib import Path

from posttrainbench.provision import config


def ptb_home() -> Path:
    return config.load().paths.ptb_home


def model_cache() -> Path:
    return config.load().paths.model_cache


def twin_cache() -> Path:
    return config.load().paths.twin_cache
