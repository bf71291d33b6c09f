"""The hf backend on a GPU with a model of real shapes: batched bf16 generation through the real
evaluation path (`posttrainbench.evaluation.runner.evaluate`), per task, at two batch sizes.

The model has Qwen3-1.7B's shapes with random weights (no hub access on the GPU machine), and the
tiny model's tokenizer (ids it does not know decode to nothing). Random weights never stop early, so
every answer runs to the token budget: a worst case for throughput. A generation_config.json asking
for sampling is planted to show it is not applied (outputs of two runs must match).

    python bench/gpu_eval.py --data-dir DIR [--limit 64] [--max-tokens 256] [--out bench/results]

`--estimate GEN_JSON` instead: the time to evaluate the seven tasks at their defaults (`ptb eval
--tasks all`: each task's default limit and token budget, batch 32, one model load) on the hf backend,
from bench/gpu_generate.py's per-step figures (a run with `--profile loop`), in two cases: every
answer runs to its budget (worst) and every answer stops at 1,000 tokens (typical). See `estimate`.
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
    """Seconds per task, worst and typical, for the hf backend (`backends.compiled_decoding`: the
    decoding loop) and for `generate` with the dynamic cache alone (the backend before it), from a
    bench/gpu_generate.py run with a plain row and a profiled loop row (`--profile loop`) at batch 32.

    A loop step is a + window bytes / bw_kv: the window is the filled slots rounded up to WINDOW, a the
    measured step less its attention kernels (weights, fixed costs) and bw_kv the rate the attention
    kernels read the window at in that step (short answers; longer ones give each kernel more to read,
    so this errs on the slow side). The loop's cache starts at prompt + GROW_FROM and doubles up to
    prompt + budget while it fits in GROW_SHARE of the free memory; where it does not, the call restarts
    in generate with the dynamic cache after the steps already decoded. A dynamic-cache step is
    max(c_plain, (weights + 3 x the filled cache) / copy rate): the measured plain step, or, at long
    contexts, reading the cache and torch.cat copying it (read + write). Answers sharing a batch run as
    long as its longest, the loop stopping at its next 16-step check; prompts are left-padded to the
    longest; prefill runs at half the matmul rate; compiling (30-45 s per process and cache length on
    the H100) and the judges' calls are left out. The loop's constants are decoding.py's own."""
    import json

    from posttrainbench.evaluation.decoding import CHECK_EVERY, GROW_FROM, GROW_SHARE, WINDOW, bucket

    run = json.loads(gen_json.read_text())
    rows = [r for r in run["rows"] if r["batch"] == batch and "seconds" in r]
    loop = next(r for r in rows if r["variant"] == "loop" and "profile" in r)
    plain = next(r for r in rows if r["variant"] == "plain")
    bw, flops, prompt0, new0 = run["copy_gbps"] * 1e9, run["matmul_tflops"] * 1e12, run["prompt"], run["new"]

    def window(slots: int) -> int:
        return -(-slots // WINDOW) * WINDOW

    def kv_read(b: int, prompt: int, steps: int) -> float:  # mean window bytes a step reads
        return sum(b * window(prompt + i) * KV_BYTES_PER_TOKEN for i in range(steps)) / steps

    attention = sum(
        k["us_step"] for k in loop["profile"]["top"] if "sdpa" in k["kernel"] or "attention" in k["kernel"]
    )
    attention *= 1e-6 * loop["seconds"] / new0 / (loop["profile"]["wall_ms_step"] * 1e-3)  # to the timed pass
    bw_kv = kv_read(batch, prompt0, new0) / attention
    a = loop["seconds"] / new0 - attention
    c_plain = plain["seconds"] / new0

    def loop_seconds(b: int, prompt: int, steps: int) -> float:
        return steps * (a + kv_read(b, prompt, steps) / bw_kv)

    def dynamic_seconds(b: int, prompt: int, steps: int) -> float:
        return sum(
            max(c_plain, (WEIGHT_BYTES + 3 * b * (prompt + i) * KV_BYTES_PER_TOKEN) / bw)
            for i in range(steps)
        )

    def seconds(n: int, prompt: int, budget: int, steps: int, backend: str) -> float:
        total = 0.0
        for b in [batch] * (n // batch) + ([n % batch] if n % batch else []):
            total += 2 * 1.72e9 * b * prompt / (0.5 * flops)
            if backend == "dynamic_only":
                total += dynamic_seconds(b, prompt, steps)
                continue
            checked = min(budget, -(-steps // CHECK_EVERY) * CHECK_EVERY)  # the loop stops at its next check
            length, need = bucket(prompt + GROW_FROM), prompt + checked
            while (
                length < need
                and b * min(2 * length, bucket(need)) * (KV_BYTES_PER_TOKEN + 9) <= GROW_SHARE * FREE_BYTES
            ):
                length = min(2 * length, bucket(need))
            if length >= need:
                total += loop_seconds(b, prompt, checked)
            else:  # the cache cannot grow that far: generate starts over after the loop's steps
                total += loop_seconds(b, prompt, length - prompt) + dynamic_seconds(b, prompt, steps)
        return total

    backends = ("hf", "dynamic_only")
    tasks = {
        name: {case: {backend: round(seconds(n, prompt, budget, min(steps, budget), backend)) for backend in backends}
               for case, steps in (("worst", budget), ("typical", typical))}
        for name, (n, prompt, budget) in DEFAULT_EVAL.items()
    }  # fmt: skip
    totals = {
        case: {b: sum(t[case][b] for t in tasks.values()) for b in backends} for case in ("worst", "typical")
    }
    return {"from": str(gen_json), "device": run["device"], "date": run["date"], "loop_a_ms": round(a * 1e3, 2),
            "loop_kv_gbps": round(bw_kv / 1e9), "c_plain_ms": round(c_plain * 1e3, 2), "copy_gbps": run["copy_gbps"],
            "batch": batch, "tasks": tasks, "total_seconds": totals}  # fmt: skip


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
