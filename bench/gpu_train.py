"""Training throughput of the reference recipe's model step at real sizes, against a plain loop, side
by side in one process on one GPU.

Models of Qwen3-1.7B / Qwen3-4B shapes with random bf16 weights (built from a config: no hub on the
GPU machine), full sequences of --seq tokens (what packing without padding gives), fused AdamW. Each
variant runs --warmup steps, then --steps timed steps:

  plain            the model's own forward with labels (logits materialised, fp32 cross-entropy)
  liger            Liger kernels (RMSNorm, RoPE, SwiGLU, fused linear cross-entropy: no logits)
  liger+bigger     the same at the batch the freed memory allows
  liger+compile    the same, the decoder layers compiled with torch.compile

MFU counts 6N + 6*L*s*H*d (causal attention, forward and backward) FLOPs per token, against the bf16
matmul rate measured in the same call (8192^3 matmuls).

    python bench/gpu_train.py [--shape 1.7b|4b|small] [--seq 2048] [--steps 10] [--json PATH]
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path

import torch

SHAPES = {
    "1.7b": dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28, num_attention_heads=16,
                 num_key_value_heads=8, head_dim=128, vocab_size=151936, tie_word_embeddings=True),
    "4b": dict(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32,
               num_key_value_heads=8, head_dim=128, vocab_size=151936, tie_word_embeddings=True),
    "small": dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=1, head_dim=64, vocab_size=512, tie_word_embeddings=True),
}  # fmt: skip


def matmul_tflops(device: str) -> float:
    if device != "cuda":
        return float("nan")
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t0, n = time.perf_counter(), 50
    for _ in range(n):
        a @ b
    torch.cuda.synchronize()
    return 2 * 8192**3 * n / (time.perf_counter() - t0) / 1e12


def build(shape: dict, liger: bool, device: str):
    from transformers import Qwen3Config, Qwen3ForCausalLM

    if liger:
        from liger_kernel.transformers import apply_liger_kernel_to_qwen3

        apply_liger_kernel_to_qwen3(rope=True, rms_norm=True, swiglu=True, fused_linear_cross_entropy=True,
                                    cross_entropy=False)  # fmt: skip
    config = Qwen3Config(**shape, attn_implementation="sdpa", use_cache=False)
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen3ForCausalLM(config).to(torch.bfloat16)
    return model


def flops_per_token(model, shape: dict, seq: int) -> float:
    n = sum(p.numel() for p in model.parameters())  # tied embeddings: counted once, as the LM head
    attn = 6 * shape["num_hidden_layers"] * seq * shape["num_attention_heads"] * shape["head_dim"]
    return 6 * n + attn


def run_variant(name: str, shape: dict, seq: int, batch: int, steps: int, warmup: int, device: str,
                liger: bool, compile_layers: bool, peak_tflops: float) -> dict:  # fmt: skip
    model = build(shape, liger, device)
    if compile_layers:
        for layer in model.model.layers:
            layer.compile()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device == "cuda")
    x = torch.randint(0, shape["vocab_size"], (batch, seq), device=device)
    model.train()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    row = {"variant": name, "batch": batch, "seq": seq}
    try:
        for i in range(warmup + steps):
            if i == warmup:
                if device == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            loss = model(input_ids=x, labels=x).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - t0) / steps
        tok_s = batch * seq / seconds
        row |= {"step_s": round(seconds, 4), "tokens_per_s": round(tok_s),
                "mfu": round(tok_s * flops_per_token(model, shape, seq) / (peak_tflops * 1e12), 4),
                "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1) if device == "cuda" else None,
                "loss": round(float(loss), 3)}  # fmt: skip
    except torch.OutOfMemoryError:
        row |= {"error": "out of memory"}
    del model, opt, x
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=SHAPES, default="1.7b")
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batches", default="4,8,16", help="plain at the first; liger at each")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    shape = SHAPES[args.shape]
    peak = matmul_tflops(device)
    print(
        f"device {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}, bf16 matmul {peak:.0f} TFLOP/s"
    )
    batches = [int(b) for b in args.batches.split(",")]
    common = dict(shape=shape, seq=args.seq, steps=args.steps, warmup=args.warmup, device=device,
                  peak_tflops=peak)  # fmt: skip
    rows = [run_variant("plain", batch=batches[0], liger=False, compile_layers=False, **common)]
    if device == "cpu":  # Liger's kernels are Triton: GPU only (`--shape small` checks the script on a CPU)
        batches, args.no_compile = [], True
    for b in batches:
        rows.append(run_variant("liger", batch=b, liger=True, compile_layers=False, **common))
    if not args.no_compile:
        ok = [r for r in rows[1:] if "error" not in r]
        best = max(ok, key=lambda r: r["tokens_per_s"])["batch"] if ok else batches[0]
        rows.append(run_variant("liger+compile", batch=best, liger=True, compile_layers=True, **common))
    print(f"\n{'variant':<15}{'batch':>6}{'tok/s':>10}{'MFU':>7}{'peak GiB':>10}")
    for r in rows:
        if "error" in r:
            print(f"{r['variant']:<15}{r['batch']:>6}  {r['error']}")
        else:
            print(
                f"{r['variant']:<15}{r['batch']:>6}{r['tokens_per_s']:>10}{r['mfu']:>7.2f}{r['peak_gib']!s:>10}"
            )
    result = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "torch": torch.__version__,
              "shape": args.shape, "matmul_tflops": round(peak, 1), "rows": rows,
              "date": time.strftime("%Y-%m-%d")}  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
