"""The reference recipe (`posttrainbench.agents.builtin.sft.finetune`, TRL SFT as the `reference` agent
runs it) at real sizes on a GPU, against a plain training loop measured in the same process.

A model of Qwen3-1.7B (or 4B) shapes with random bf16 weights and the tiny model's tokenizer is saved
to a temporary directory; synthetic chat examples of ~300 tokens are packed into 2048-token rows. The
recipe plans its batch and steps for --seconds and trains; its tokens/s (non-padding tokens seen per
second of training: over the whole of `train()`, and steady, from step 3 on) and MFU (6N + causal
attention FLOPs per token, against the bf16 matmul rate measured here) are compared with
bench/gpu_train.py's plain loop (batch 4, logits materialised; 3 warm-up steps, then 8 timed).

    python bench/gpu_recipe.py [--shape 1.7b|4b] [--seconds 240] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import torch

from gpu_train import SHAPES, matmul_tflops, run_variant  # bench/ is on sys.path

WORDS = "alpha beta gamma delta model train data token answer question result value number".split()


def build(model_dir: Path, shape: dict) -> int:
    """Save a random model of these shapes; returns its parameter count (tied embeddings once)."""
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    from posttrainbench import models, settings

    tok = AutoTokenizer.from_pretrained(models.snapshot(models.get("ptb-tiny"), settings.model_cache()))
    config = Qwen3Config(**shape, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)  # fmt: skip
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen3ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    return sum(p.numel() for p in model.parameters())


def examples(n: int) -> list[dict]:
    rng = random.Random(0)
    say = lambda k: " ".join(rng.choice(WORDS) for _ in range(k))  # noqa: E731
    return [{"prompt": [{"role": "user", "content": say(120)}],
             "completion": [{"role": "assistant", "content": say(150)}]} for _ in range(n)]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=("1.7b", "4b"), default="1.7b")
    ap.add_argument("--seconds", type=float, default=240)
    ap.add_argument("--examples", type=int, default=20_000)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    from posttrainbench.agents.builtin.sft import finetune

    shape = SHAPES[args.shape]
    peak = matmul_tflops("cuda")
    plain = run_variant("plain", shape=shape, seq=2048, batch=4 if args.shape == "1.7b" else 2, steps=8, warmup=3,
                        device="cuda", liger=False, compile_layers=False, peak_tflops=peak)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, out = Path(tmp) / "model", Path(tmp) / "run" / "final_model"
        n = build(model_dir, shape)
        torch.cuda.empty_cache()
        t0 = time.time()
        summary = finetune(str(model_dir), examples(args.examples), out, deadline=t0 + args.seconds)
        wall = time.time() - t0
    attention = 6 * shape["num_hidden_layers"] * 2048 * shape["num_attention_heads"] * shape["head_dim"]
    mfu = lambda tok_s: round(tok_s * (6 * n + attention) / (peak * 1e12), 4)  # noqa: E731
    steady = summary["steady_tokens_per_s"]
    result = {
        "device": torch.cuda.get_device_name(), "torch": torch.__version__, "shape": args.shape,
        "date": time.strftime("%Y-%m-%d"), "matmul_tflops": round(peak, 1), "plain": plain,
        "recipe": {**summary, "wall_seconds": round(wall, 1), "mfu": mfu(summary["tokens_per_s"]),
                   "steady_mfu": steady and mfu(steady)},
        "speedup_vs_plain": round(summary["tokens_per_s"] / plain["tokens_per_s"], 2),
        "steady_speedup_vs_plain": steady and round(steady / plain["tokens_per_s"], 2),
    }  # fmt: skip
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
