"""Batched generation at Qwen3-1.7B shapes (random bf16 weights, built from a config) with what
transformers itself offers, side by side in one process, against the decode bound.

  plain        model.generate with the dynamic cache (what the hf evaluation backend did until now)
  static       cache_implementation="static": generate compiles the decoding step (transformers'
               default CompileConfig: inductor, mode "reduce-overhead", i.e. CUDA graphs), SDPA
  static-gqa   the same with `backends.gqa_sdpa_attention` (the KV cache read once per step, not
               copied per query head by repeat_kv as SDPA under compile does); the hf backend's
               set-up before the decoding loop
  static-flex  the same with attn_implementation="flex_attention" (skips the empty end of the cache)
  backend      the hf evaluation backend's set-up (`backends.compiled_decoding`): model.generate
               wrapped by the decoding loop (`evaluation/decoding.py`), static-gqa for the calls it
               does not take; run it after the variants that call model.generate: it wraps it for good
  loop         `decoding.DecodingLoop` called directly, no wrapper, errors raised (what `backend`
               runs): prefill into a static cache, then compiled steps replayed as CUDA graphs over a
               growing window of the cache, the host checking for finished rows every 16 steps
  loop-grow    the same with the cache starting at 64 new tokens and doubling as the answers grow
               (decoding.GROW_FROM, 1,024 in use): its tokens must be the loop's, every one
  continuous   model.generate_batch: continuous batching with a paged KV cache, CUDA graphs on

Every request has a --prompt-token prompt and generates exactly --new tokens (random weights never
stop early; min_new_tokens forces it). --cache-len sizes the static cache (generation_config's
max_cache_len) as the evaluation's long token budgets do. The decode bound per step is max(bytes
read / copy bandwidth, FLOPs / matmul rate), bytes = bf16 weights + the KV cache at the mean context
(only the filled part), both rates measured here. ms/step is the timed pass's seconds over --new
(the prefill included).

    python bench/gpu_generate.py [--batches 32,256] [--new 256] [--cache-len N] [--profile loop] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from pathlib import Path

import torch

from gpu_train import SHAPES, matmul_tflops  # bench/ is on sys.path

ATTENTION = {"plain": "sdpa", "static": "sdpa", "static-flex": "flex_attention", "continuous": "sdpa"}


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

    from posttrainbench.evaluation import decoding
    from posttrainbench.evaluation.backends import compiled_decoding, register_gqa_sdpa
    from posttrainbench.evaluation.decoding import DecodingLoop

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="32,256")
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--new", type=int, default=256)
    ap.add_argument("--cache-len", type=int, default=None, help="static cache length (default prompt + new)")
    ap.add_argument("--variants", default="plain,static,static-gqa,static-flex")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--jsonl", type=Path, default=None, help="append each row as it is measured")
    ap.add_argument("--profile", default="", metavar="VARIANTS",
                    help="for these variants (comma-separated), one more pass under torch.profiler after the timed "
                    "ones: the GPU's kernel time per step against the step's wall time, and the kernels that take it")  # fmt: skip
    args = ap.parse_args()
    ATTENTION["static-gqa"] = ATTENTION["backend"] = ATTENTION["loop"] = ATTENTION["loop-grow"] = (
        register_gqa_sdpa()
    )
    shape = SHAPES["1.7b"]
    grow_from = decoding.GROW_FROM
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
        reference = looped = None
        for variant in args.variants.split(","):
            row = {
                "variant": variant,
                "batch": batch,
                "cache_len": args.cache_len,
                "bound_tok_s": round(ceiling),
            }
            torch._dynamo.reset()  # each variant compiles (and records its CUDA graphs) afresh
            for stale in ("_compiled_call", "_previous_max_cache_length"):
                model.__dict__.pop(stale, None)
            if hasattr(model, "decoding_loop"):  # the backend variant's: free its static cache
                model.decoding_loop.release()
            model.set_attn_implementation(ATTENTION[variant])
            loop = DecodingLoop(model, strict=True) if variant.startswith("loop") else None
            decoding.GROW_FROM = 64 if variant == "loop-grow" else grow_from
            if variant == "backend":
                compiled_decoding(model)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            try:
                first, seconds, out = run(model, variant, ids, args.new, args.cache_len, loop)
                tok_s = batch * args.new / seconds
                row |= {
                    "first_pass_s": round(first, 1),
                    "seconds": round(seconds, 2),
                    "ms_step": round(1000 * seconds / args.new, 2),
                    "tok_s": round(tok_s),
                    "of_bound": round(tok_s / ceiling, 3),
                    "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1),
                }
                if variant in args.profile.split(",") and variant != "continuous":
                    row["profile"] = profile(model, variant, ids, args.new, args.cache_len, loop)
                if variant == "loop":
                    looped = out
                elif variant == "loop-grow" and looped is not None:
                    # Where each row first differs from the loop's (none: -1). Other cache lengths compile to
                    # other kernels, whose bf16 rounding can flip near-ties of random weights; a wrong copy
                    # would make every row differ from the step the cache grew at (new token 128 of 128-token prompts).
                    differ = out != looped
                    first = torch.where(differ.any(1), differ.int().argmax(1), -1)
                    row["first_difference"] = sorted(first.tolist())
                    row["same_as_loop"] = round(float((first < 0).float().mean()), 3)
                if reference is None:
                    reference = out
                elif out is not None:  # bf16 rounding differs between kernels; random weights tie often
                    row["same_first_8_tokens"] = round(
                        float((out[:, :8] == reference[:, :8]).all(1).float().mean()), 3
                    )
            except Exception as e:  # one variant failing must not lose the others' figures
                row["error"] = f"{type(e).__name__}: {e}"[:300]
                traceback.print_exc()
            if variant == "backend":  # whether the decoding loop took the calls, or generate did
                row |= {
                    "loop_calls": model.decoding_loop.calls,
                    "loop_disabled": model.decoding_loop.disabled,
                }
            if loop is not None:
                loop.release()
            torch.cuda.empty_cache()
            print(json.dumps(row), flush=True)
            if args.jsonl:
                with args.jsonl.open("a") as f:
                    f.write(json.dumps(row) + "\n")
            rows.append(row)
    plain = {r["batch"]: r.get("tok_s") for r in rows if r["variant"] == "plain"}
    print(
        f"\n{'variant':<12}{'batch':>6}{'tok/s':>9}{'ms/step':>9}{'x plain':>9}{'of bound':>10}{'1st pass s':>11}"
    )
    for r in rows:
        x = r.get("tok_s") / plain[r["batch"]] if r.get("tok_s") and plain.get(r["batch"]) else None
        print(f"{r['variant']:<12}{r['batch']:>6}{r.get('tok_s', '-')!s:>9}{r.get('ms_step', '-')!s:>9}"
              f"{'' if x is None else f'{x:.1f}':>9}{r.get('of_bound', r.get('error', ''))!s:>10}"
              f"{r.get('first_pass_s', '')!s:>11}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                                         "transformers": __import__("transformers").__version__,
                                         "matmul_tflops": round(tflops), "copy_gbps": round(gbps),
                                         "prompt": args.prompt, "new": args.new, "rows": rows,
                                         "date": time.strftime("%Y-%m-%d")}, indent=2))  # fmt: skip


def settings(variant: str, new: int, cache_len: int | None) -> dict:
    """The generation settings of every pass: exactly `new` greedy tokens."""
    fixed = dict(max_new_tokens=new, min_new_tokens=new, do_sample=False, eos_token_id=2, pad_token_id=0)
    if variant.startswith("static"):
        fixed |= {"cache_implementation": "static", "max_cache_len": cache_len}
    elif variant.startswith("loop"):  # it sizes its static cache itself, at least max_cache_len slots
        fixed |= {"max_cache_len": cache_len}
    return fixed


def once(model, variant: str, ids: torch.Tensor, fixed: dict, loop=None) -> tuple[int, torch.Tensor | None]:
    """One pass: (tokens generated, the generated ids or None)."""
    from transformers import ContinuousBatchingConfig, GenerationConfig

    if variant == "continuous":  # its manager thread runs outside any inference_mode of ours
        outputs = model.generate_batch(inputs=ids.tolist(), generation_config=GenerationConfig(**fixed),
                                       continuous_batching_config=ContinuousBatchingConfig(use_cuda_graph=True))  # fmt: skip
        return sum(len(o.generated_tokens) for o in outputs.values()), None
    with torch.inference_mode():
        generate = model.generate if loop is None else loop.try_generate
        out = generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=GenerationConfig(**fixed)
        )
    if out is None:
        raise RuntimeError("the decoding loop did not take the call")
    return out[:, ids.shape[1] :].numel(), out[:, ids.shape[1] :]


def run(model, variant: str, ids: torch.Tensor, new: int, cache_len: int | None, loop=None):
    """(seconds of the first pass, which compiles where needed; seconds of a second, timed pass; its
    generated ids or None). A pass that does not return exactly batch x new tokens raises. `loop`: the
    DecodingLoop of the loop variant."""
    fixed = settings(variant, new, cache_len)
    times = []
    for _ in range(2):
        if variant == "loop-grow":  # each pass starts small and grows its cache
            loop.release()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        tokens, out = once(model, variant, ids, fixed, loop)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        if tokens != ids.shape[0] * new:
            raise RuntimeError(f"generated {tokens} tokens, expected {ids.shape[0] * new}")
    return times[0], times[1], out


def profile(
    model, variant: str, ids: torch.Tensor, new: int, cache_len: int | None, loop=None, top: int = 12
):
    """One more pass under torch.profiler: wall and kernel milliseconds per step, kernels per step, and
    the `top` kernels by time (their share of the kernel time, microseconds and calls per step)."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as profiler

    fixed = settings(variant, new, cache_len)
    torch.cuda.synchronize()
    with profiler(activities=[ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        once(model, variant, ids, fixed, loop)
        torch.cuda.synchronize()
        wall = time.perf_counter() - t0
    kernels = [e for e in prof.key_averages() if e.device_type == DeviceType.CUDA]
    busy = sum(e.self_device_time_total for e in kernels)  # microseconds
    kernels.sort(key=lambda e: -e.self_device_time_total)
    summary = {
        "wall_ms_step": round(1000 * wall / new, 2),
        "kernel_ms_step": round(busy / 1000 / new, 2),
        "kernels_step": round(sum(e.count for e in kernels) / new, 1),
        "top": [{"kernel": e.key[:90], "share": round(e.self_device_time_total / busy, 3),
                 "us_step": round(e.self_device_time_total / new, 1), "calls_step": round(e.count / new, 1)}
                for e in kernels[:top]],
    }  # fmt: skip
    print(f"profile {variant} batch {ids.shape[0]}: wall {summary['wall_ms_step']} ms/step, kernels "
          f"{summary['kernel_ms_step']} ms/step, {summary['kernels_step']} kernels/step", flush=True)  # fmt: skip
    for k in summary["top"]:
        print(
            f"  {k['share']:6.1%} {k['us_step']:8.1f} us {k['calls_step']:6.1f}x  {k['kernel']}", flush=True
        )
    return summary


if __name__ == "__main__":
    main()
