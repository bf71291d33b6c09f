"""ptb-tiny: built locally and deterministically, loadable by hub id from the cache, offline."""

from __future__ import annotations

import os
import subprocess
import sys

from posttrainbench import models, settings
from posttrainbench.demo import tiny_model
from posttrainbench.rundir import sha256_file


def test_build_is_deterministic(tmp_path):
    a = tiny_model.build(tmp_path / "a")
    b = tiny_model.build(tmp_path / "b")
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert sha256_file(a / name) == sha256_file(b / name), name


def test_registered_in_hub_cache_layout(ptb_home):
    card = models.get("ptb-tiny")
    snap = models.snapshot(card, settings.model_cache())
    repo = settings.model_cache() / "models--posttrainbench--ptb-tiny-base"
    assert (repo / "refs" / "main").read_text() == card.revision
    assert snap == repo / "snapshots" / card.revision
    assert models.family_of(snap) == "qwen3"


def test_loads_by_name_offline_with_from_pretrained(ptb_home):
    code = (
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "m = AutoModelForCausalLM.from_pretrained('posttrainbench/ptb-tiny-base')\n"
        "t = AutoTokenizer.from_pretrained('posttrainbench/ptb-tiny-base')\n"
        "c = m.config\n"
        "print(c.model_type, c.head_dim, t.tokenize('What is 12 + 345?'))\n"
        "print(t.apply_chat_template([{'role': 'user', 'content': 'hi'}], tokenize=False, add_generation_prompt=True))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(settings.model_cache())}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("qwen3 64 ")
    assert "'1', '2'" in out and "'3', '4', '5'" in out  # digits are single tokens
    assert "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n" in out
