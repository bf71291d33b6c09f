"""The hf backend on a GPU with a model of real shapes: batched bf16 generation through the real
evaluation path (`posttrainbench.evaluation.runner.evaluate`), per task, at two batch sizes.

The model has Qwen3-1.7B's shapes with random weights (no hub access on the GPU machine), and the
tiny model's tokenizer (ids it does not know decode to nothing). Random weights never stop early, so
every answer runs to the token budget: a worst case for throughput. A generation_config.json asking
for sampling is planted to show it is not applied (outputs of two runs must match).

    python bench/gpu_eval.py --data-dir DIR [--limit 64] [--max-tokens 256] [--out bench/results]

`--estimate GEN_JSON` instead: the time to evaluate the seven tasks at their defaults (`ptb eval
--tasks all`: each task's default limit and token budget, batch 32, one model load) on the hf backend,
from bench/gpu_generate.py's per-step figures, in two cases: every answer runs to its budget (worst)
and every answer stops at 1,000 tokens (typical). See `estimate`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

QWEN3_1_7B = {
    "hidden_size": 2048,
    "intermediate_size": 6144,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 151936,
    "max_position_embeddings": 40960,
    "rope_theta": 1000000,
    "tie_word_embeddings": True,
}
# `--shape small`: the same script in seconds on a CPU, to check it before spending GPU time.
SMALL = {**QWEN3_1_7B, "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 2,
         "num_key_value_heads": 1, "head_dim": 64, "vocab_size": 512}  # fmt: skip
TASKS = ("gsm8k", "gpqamain", "bfcl", "aime2025")
# The default evaluation of each task: samples, the longest prompt in tokens (characters / 4 of the
# dataset input, few-shot exemplars included; read from the pinned data 2026-11-27), token budget.
DEFAULT_EVAL = {
    "aime2025": (30, 433, 16000), "arenahardwriting": (32, 2576, 16384), "bfcl": (100, 121, 16000),
    "gpqamain": (50, 288, 16000), "gsm8k": (150, 1621, 4000), "healthbench": (32, 712, 16384),
    "humaneval": (150, 380, 4000),
}  # fmt: skip
KV_BYTES_PER_TOKEN = 2 * 28 * 8 * 128 * 2  # Qwen3-1.7B, bf16
WEIGHT_BYTES = 2 * 1.72e9
FREE_BYTES = 75e9  # an 80 GB H100 after the weights


def estimate(gen_json: Path, batch: int = 32, typical: int = 1000) -> dict:
    """Seconds per task, worst and typical, for the hf backend as `backends.compiled_decoding` sets it
    up, and for the dynamic cache alone (the backend before it), at the copy rate BW of gen_json.

    A static-cache step reads the weights and the whole cache (prompt + budget): c_static + bytes / BW,
    with c_static what the measured batch-32, 16,384-slot static-gqa step took beyond its bytes. A
    dynamic-cache step is max(c_plain, (weights + 3 x the filled cache) / BW): the measured plain step,
    or, at long contexts, reading the cache for attention and torch.cat copying it (read + write). The
    backend keeps the dynamic cache where the static one would pass half the free memory. Answers
    sharing a batch run as long as its longest; prompts are left-padded to the longest; prefill runs
    at half the matmul rate; compiling (30-45 s per new static shape on the H100) is left out."""
    import json

    runs = json.loads(gen_json.read_text())["runs"]
    long = next(r for r in runs if r["rows"][0].get("cache_len"))
    rows = {r["variant"]: r for r in long["rows"]}
    bw, flops = long["copy_gbps"] * 1e9, long["matmul_tflops"] * 1e12
    new, cache = long["new"], rows["static-gqa"]["cache_len"]
    c_static = rows["static-gqa"]["seconds"] / new - (WEIGHT_BYTES + batch * cache * KV_BYTES_PER_TOKEN) / bw
    c_plain = rows["plain"]["seconds"] / new

    def seconds(n: int, prompt: int, budget: int, steps: int, static_allowed: bool) -> float:
        total = 0.0
        for b in [batch] * (n // batch) + ([n % batch] if n % batch else []):
            total += 2 * 1.72e9 * b * prompt / (0.5 * flops)
            if static_allowed and b * (prompt + budget) * KV_BYTES_PER_TOKEN < 0.5 * FREE_BYTES:
                total += steps * (c_static + (WEIGHT_BYTES + b * (prompt + budget) * KV_BYTES_PER_TOKEN) / bw)
            else:
                total += sum(max(c_plain, (WEIGHT_BYTES + 3 * b * (prompt + i) * KV_BYTES_PER_TOKEN) / bw)
                             for i in range(steps))  # fmt: skip
        return total

    tasks = {
        name: {
            case: {
                backend: round(seconds(n, prompt, budget, min(steps, budget), backend == "hf"))
                for backend in ("hf", "dynamic_only")
            }
            for case, steps in (("worst", budget), ("typical", typical))
        }
        for name, (n, prompt, budget) in DEFAULT_EVAL.items()
    }
    totals = {case: {b: sum(t[case][b] for t in tasks.values()) for b in ("hf", "dynamic_only")}
              for case in ("worst", "typical")}  # fmt: skip
    return {"from": str(gen_json), "device": long["device"], "c_static_ms": round(c_static * 1e3, 2),
            "c_plain_ms": round(c_plain * 1e3, 2), "copy_gbps": long["copy_gbps"], "batch": batch,
            "tasks": tasks, "total_seconds": totals}  # fmt: skip


def build(model_dir: Path, shape: dict) -> None:
    import torch
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    from posttrainbench import models, settings

    tiny = models.snapshot(models.get("ptb-tiny"), settings.model_cache())
    tok = AutoTokenizer.from_pretrained(tiny)
    config = Qwen3Config(
        **shape,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = Qwen3ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    (model_dir / "generation_config.json").write_text(
        json.dumps({"do_sample": True, "temperature": 1.5, "top_k": 5, "repetition_penalty": 2.0})
    )
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def output_tokens(log_file: str) -> int:
    from inspect_ai.log import read_eval_log

    return sum(u.output_tokens for u in read_eval_log(log_file).stats.model_usage.values())


def outputs(log_file: str) -> list[str]:
    from inspect_ai.log import read_eval_log

    log = read_eval_log(log_file)
    return [s.output.completion for s in sorted(log.samples, key=lambda s: str(s.id))]


def main() -> None:
    import torch

    from posttrainbench.evaluation.runner import RunOptions, evaluate

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--estimate", type=Path, metavar="GEN_JSON")
    p.add_argument("--limit", type=int, default=64)
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--batches", default="1,32")
    p.add_argument("--shape", choices=("qwen3-1.7b", "small"), default="qwen3-1.7b")
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    args = p.parse_args()
    if args.estimate:
        result = estimate(args.estimate)
        print(f"{'task':18}{'worst hf':>10}{'dynamic':>10}{'typical hf':>12}{'dynamic':>10}   (seconds)")
        for name, t in [*result["tasks"].items(), ("total", result["total_seconds"])]:
            print(f"{name:18}{t['worst']['hf']:>10}{t['worst']['dynamic_only']:>10}"
                  f"{t['typical']['hf']:>12}{t['typical']['dynamic_only']:>10}")  # fmt: skip
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_eval_estimate.json").write_text(json.dumps(result, indent=2))
        return
    if args.data_dir is None:
        p.error("--data-dir is required (unless --estimate)")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cuda = torch.cuda.is_available()
    work = Path(tempfile.mkdtemp(prefix="ptb-gpu-"))
    model_dir = work / "qwen3-1.7b-shaped"
    started = time.monotonic()
    build(model_dir, QWEN3_1_7B if args.shape == "qwen3-1.7b" else SMALL)
    build_s = time.monotonic() - started
    rows = []
    for batch in [int(b) for b in args.batches.split(",")]:
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        for task in TASKS:
            # Batch 1 is slow: a small slice of each task is enough for the ratio.
            limit = args.limit if batch > 1 else max(2, args.limit // 16)
            t0 = time.monotonic()
            [m] = evaluate(
                [task],
                model_dir,
                RunOptions(
                    backend="hf",
                    limit=limit,
                    max_tokens=args.max_tokens,
                    max_connections=batch,
                    data_dir=args.data_dir,
                    log_dir=work / "logs",
                    display="none",
                ),
            )
            seconds = time.monotonic() - t0
            rows.append(
                {
                    "task": task,
                    "batch": batch,
                    "samples": m.n,
                    "seconds": round(seconds, 2),
                    "samples_per_s": round(m.n / seconds, 3),
                    "new_tokens_per_s": round(output_tokens(m.log_files[0]) / seconds, 1),
                    "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else 0.0,
                    "log": m.log_files[0],
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    # Greedy and deterministic: a second run of the same slice gives the same text, and so does a run
    # without the planted sampling generation_config.json.
    first = next(r for r in rows if r["task"] == "gsm8k" and r["batch"] > 1)

    def rerun() -> list[str]:
        [m] = evaluate(
            ["gsm8k"],
            model_dir,
            RunOptions(
                backend="hf",
                limit=first["samples"],
                max_tokens=args.max_tokens,
                max_connections=first["batch"],
                data_dir=args.data_dir,
                log_dir=work / "logs",
                display="none",
            ),
        )
        return outputs(m.log_files[0])

    deterministic = outputs(first["log"]) == rerun()
    (model_dir / "generation_config.json").unlink()
    ignored = outputs(first["log"]) == rerun()
    result = {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "shape": args.shape,
        "torch": torch.__version__,
        "model": "Qwen3-1.7B shapes, random bf16 weights",
        "max_tokens": args.max_tokens,
        "build_seconds": round(build_s, 1),
        "rows": [{k: v for k, v in r.items() if k != "log"} for r in rows],
        "repeat_run_identical": deterministic,
        "generation_config_ignored": ignored,
    }
    print(f"\n{result['device']}  (max_tokens {args.max_tokens}, bf16, hf backend)")
    print(f"{'task':10} {'batch':>5} {'n':>4} {'s':>8} {'samples/s':>10} {'tok/s':>9} {'peak GiB':>9}")
    for r in result["rows"]:
        print(
            f"{r['task']:10} {r['batch']:>5} {r['samples']:>4} {r['seconds']:>8} {r['samples_per_s']:>10} "
            f"{r['new_tokens_per_s']:>9} {r['peak_gpu_gib']:>9}"
        )
    print(f"repeat run identical: {deterministic}; same without the planted generation_config: {ignored}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_eval.json").write_text(json.dumps(result, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
