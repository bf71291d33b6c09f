"""Batched generation at Qwen3-1.7B shapes (random bf16 weights, built from a config) with what
transformers itself offers, side by side in one process, against the decode bound.

  plain       model.generate with the dynamic cache (what the hf evaluation backend does today)
  static      model.generate with cache_implementation="static" (compiled decoding)
  continuous  model.generate_batch: continuous batching with a paged KV cache

Every request has a --prompt-token prompt and generates exactly --new tokens (random weights never
stop early; min_new_tokens forces it). The decode bound per step is max(bytes read / copy bandwidth,
FLOPs / matmul rate), bytes = bf16 weights + the KV cache at the mean context, both rates measured here.

    python bench/gpu_generate.py [--batches 32,256] [--new 256] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from pathlib import Path

import torch

from gpu_train import SHAPES, matmul_tflops  # bench/ is on sys.path


def copy_gbps() -> float:
    x = torch.empty(2**31, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    torch.cuda.synchronize()
    t0, n = time.perf_counter(), 20
    for _ in range(n):
        y.copy_(x)
    torch.cuda.synchronize()
    return 2 * x.numel() * n / (time.perf_counter() - t0) / 1e9  # read + write


def bound(shape: dict, n_params: int, batch: int, prompt: int, new: int, gbps: float, tflops: float) -> float:
    kv_per_token = 2 * shape["num_hidden_layers"] * shape["num_key_value_heads"] * shape["head_dim"] * 2
    context = prompt + new / 2
    step_bytes = 2 * n_params + batch * context * kv_per_token
    step_flops = 2 * n_params * batch
    step = max(step_bytes / (gbps * 1e9), step_flops / (tflops * 1e12))
    return batch / step


def main() -> None:
    from transformers import Qwen3Config, Qwen3ForCausalLM

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="32,256")
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--new", type=int, default=256)
    ap.add_argument("--variants", default="plain,static,continuous")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    shape = SHAPES["1.7b"]
    tflops, gbps = matmul_tflops("cuda"), copy_gbps()
    print(
        f"{torch.cuda.get_device_name()}: bf16 matmul {tflops:.0f} TFLOP/s, copy {gbps:.0f} GB/s", flush=True
    )
    config = Qwen3Config(**shape, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen3ForCausalLM(config).to(torch.bfloat16).eval()
    n_params = sum(p.numel() for p in model.parameters())
    rows = []
    for batch in (int(b) for b in args.batches.split(",")):
        ids = torch.randint(3, shape["vocab_size"], (batch, args.prompt), device="cuda")
        ceiling = bound(shape, n_params, batch, args.prompt, args.new, gbps, tflops)
        for variant in args.variants.split(","):
            row = {"variant": variant, "batch": batch, "bound_tok_s": round(ceiling)}
            try:
                seconds = run(model, variant, ids, args.new)
                tok_s = batch * args.new / seconds
                row |= {
                    "seconds": round(seconds, 2),
                    "tok_s": round(tok_s),
                    "of_bound": round(tok_s / ceiling, 3),
                }
            except Exception as e:  # one variant failing must not lose the others' figures
                row["error"] = f"{type(e).__name__}: {e}"[:300]
                traceback.print_exc()
            torch.cuda.empty_cache()
            print(json.dumps(row), flush=True)
            rows.append(row)
    plain = {r["batch"]: r.get("tok_s") for r in rows if r["variant"] == "plain"}
    print(f"\n{'variant':<12}{'batch':>6}{'tok/s':>9}{'x plain':>9}{'of bound':>10}")
    for r in rows:
        x = r.get("tok_s") / plain[r["batch"]] if r.get("tok_s") and plain.get(r["batch"]) else None
        print(f"{r['variant']:<12}{r['batch']:>6}{r.get('tok_s', '-')!s:>9}{'' if x is None else f'{x:.1f}':>9}"
              f"{r.get('of_bound', r.get('error', ''))!s:>10}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                                         "matmul_tflops": round(tflops), "copy_gbps": round(gbps),
                                         "prompt": args.prompt, "new": args.new, "rows": rows,
                                         "date": time.strftime("%Y-%m-%d")}, indent=2))  # fmt: skip


def run(model, variant: str, ids: torch.Tensor, new: int) -> float:
    """Seconds for one timed pass (after one untimed warm-up pass, which compiles where needed). A pass
    that does not return exactly batch x new generated tokens raises: its time would mean nothing."""
    from transformers import GenerationConfig

    fixed = dict(max_new_tokens=new, min_new_tokens=new, do_sample=False, eos_token_id=2, pad_token_id=0)

    def once() -> int:
        if variant == "continuous":  # its manager thread runs outside any inference_mode of ours
            outputs = model.generate_batch(inputs=ids.tolist(), generation_config=GenerationConfig(**fixed))
            return sum(len(o.generated_tokens) for o in outputs.values())
        extra = {"cache_implementation": "static"} if variant == "static" else {}
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                 generation_config=GenerationConfig(**fixed, **extra))  # fmt: skip
        return out[:, ids.shape[1] :].numel()

    once()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    tokens = once()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    if tokens != ids.shape[0] * new:
        raise RuntimeError(f"generated {tokens} tokens, expected {ids.shape[0] * new}")
    return seconds


if __name__ == "__main__":
    main()
