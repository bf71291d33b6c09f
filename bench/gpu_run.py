"""A whole `ptb run` on a GPU machine with a model of real shapes: the reference agent post-trains
it for a short budget (solve), the harness checks and evaluates it, and this script reads back what
the run directory says - outcome, stage times, GPU use per stage from monitor.csv, and the recipe's
own throughput from train_log.json.

The model is registered in the model cache under a real base model's name (Qwen3-1.7B-Base or
Qwen3-4B-Base) with those shapes and random weights, since the GPU machine cannot reach the hub; its
tokenizer is the tiny model's (see bench/gpu_eval.py). Random weights make the evaluation slow (answers
run to the token budget until the recipe teaches the model to stop), which is the worst case. The
agent is offline (`--network none`), as on a GPU machine that reaches nothing.

    python bench/gpu_run.py --data-dir DIR [--shape 1.7b] [--task gsm8k] [--minutes 6] [--json OUT]

`--shape small` runs the same pipeline in a few minutes on a CPU, to check it before spending GPU time.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from gpu_eval import QWEN3_1_7B, SMALL, build
from posttrainbench import models
from posttrainbench.demo import tiny_model

QWEN3_4B = {**QWEN3_1_7B, "hidden_size": 2560, "intermediate_size": 9728, "num_hidden_layers": 36,
            "num_attention_heads": 32}  # fmt: skip
SHAPES = {"1.7b": ("Qwen3-1.7B-Base", QWEN3_1_7B), "4b": ("Qwen3-4B-Base", QWEN3_4B), "small": ("Qwen3-1.7B-Base", SMALL)}  # fmt: skip


def register(hub_cache: Path, model: str, shape: dict) -> Path:
    """Build the model into the hub cache under the card's hub id, as locally built models are."""

    def builder(out_dir: Path) -> Path:
        build(out_dir, shape)
        (out_dir / "generation_config.json").unlink()  # gpu_eval plants one; a base model has its own
        return out_dir

    revision = hashlib.sha1(json.dumps(shape, sort_keys=True).encode()).hexdigest()
    return tiny_model.register(hub_cache, models.get(model).hub_id, revision, builder)


def gpu_use(monitor_csv: Path) -> dict[str, dict[str, float]]:
    """Per stage: samples, mean and max utilisation of GPU 0, and its peak memory."""
    stages: dict[str, list[dict[str, str]]] = {}
    with monitor_csv.open() as f:
        for row in csv.DictReader(f):
            stages.setdefault(row["stage"], []).append(row)
    out = {}
    for stage, rows in stages.items():
        util = [float(r["gpu0_util_pct"]) for r in rows if r.get("gpu0_util_pct")]
        mem = [float(r["gpu0_mem_used_mb"]) for r in rows if r.get("gpu0_mem_used_mb")]
        out[stage] = {
            "samples": len(rows),
            "gpu_util_mean_pct": round(statistics.fmean(util), 1) if util else None,
            "gpu_util_max_pct": max(util) if util else None,
            "gpu_mem_max_gib": round(max(mem) / 1024, 1) if mem else None,
        }
    return out


def summary(run_dir: Path) -> dict:
    record = json.loads((run_dir / "run.json").read_text())
    train_log = run_dir / "workspace" / "train_log.json"
    metrics = run_dir / "metrics.json"
    return {
        "run_dir": str(run_dir),
        "outcome": record.get("outcome"),
        "sandbox": record.get("sandbox"),
        "stages": {
            k: {"seconds": round(v["seconds"], 1), "ok": v["ok"]} for k, v in record["stages"].items()
        },
        "checks": {c["name"]: c["verdict"] for c in record.get("checks", [])},
        "gpu_use": gpu_use(run_dir / "monitor.csv") if (run_dir / "monitor.csv").is_file() else None,
        "train_log": json.loads(train_log.read_text()) if train_log.is_file() else None,
        "metrics": json.loads(metrics.read_text()) if metrics.is_file() else None,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--shape", choices=sorted(SHAPES), default="1.7b")
    p.add_argument("--task", default="gsm8k")
    p.add_argument("--minutes", type=float, default=6)
    p.add_argument("--gpus", type=int, default=None, help="default: 1 when CUDA is present, else 0")
    p.add_argument("--sandbox", default="auto")
    p.add_argument("--eval-limit", type=int)
    p.add_argument("--home", type=Path, default=Path("bench/results/gpu_run_home"))
    p.add_argument("--json", type=Path, default=Path("bench/results/gpu_run.json"))
    args = p.parse_args()

    import torch

    cuda = torch.cuda.is_available()
    model, shape = SHAPES[args.shape]
    home = args.home.resolve()
    env = {
        **os.environ,
        "PTB_HOME": str(home),
        "PTB_MODEL_CACHE": str(home / "hub"),
        "PTB_DATA_DIR": str(args.data_dir.resolve()),
        "HF_HUB_OFFLINE": "1",
    }
    os.environ.update(env)  # the tiny tokenizer is registered under PTB_HOME by build()
    t0 = time.monotonic()
    register(home / "hub", model, shape)
    build_s = time.monotonic() - t0
    results = home / "results"
    before = set(results.glob("*/run.json"))
    command = [sys.executable, "-m", "posttrainbench", "run", "--task", args.task, "--model", model,
               "--agent", "reference", "--minutes", str(args.minutes), "--sandbox", args.sandbox, "--network", "none",
               "--gpus", str(args.gpus if args.gpus is not None else int(cuda)), "--out", str(results)]  # fmt: skip
    if args.eval_limit:
        command += ["--eval-limit", str(args.eval_limit)]
    print("$", " ".join(command), flush=True)
    t0 = time.monotonic()
    rc = subprocess.run(command, env=env).returncode
    wall_s = time.monotonic() - t0
    [record] = set(results.glob("*/run.json")) - before
    run_dir = record.parent
    result = {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "date": time.strftime("%Y-%m-%d"),
        "torch": torch.__version__,
        "model": f"{model} shapes, random bf16 weights, the tiny model's tokenizer",
        "task": args.task,
        "budget_minutes": args.minutes,
        "eval_limit": args.eval_limit,
        "build_seconds": round(build_s, 1),
        "ptb_run_rc": rc,
        "ptb_run_wall_seconds": round(wall_s, 1),
        **summary(run_dir),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"\n{result['device']}: ptb run --task {args.task} --model {model} --agent reference "
          f"--minutes {args.minutes}: rc {rc}, {wall_s:.0f}s, outcome {result['outcome']}")  # fmt: skip
    print(f"{'stage':10}{'seconds':>9}{'ok':>5}{'GPU mean %':>12}{'GPU max %':>11}{'GPU GiB':>9}")
    for stage, timing in result["stages"].items():
        use = (result["gpu_use"] or {}).get(stage, {})
        print(f"{stage:10}{timing['seconds']:>9}{timing['ok']!s:>5}{use.get('gpu_util_mean_pct')!s:>12}"
              f"{use.get('gpu_util_max_pct')!s:>11}{use.get('gpu_mem_max_gib')!s:>9}")  # fmt: skip
    if result["train_log"]:
        t = result["train_log"]
        print("recipe:", {k: t["plan"][k] for k in ("batch_size", "max_steps")},
              {k: t.get(k) for k in ("steps_done", "steady_tokens_per_s", "train_loss")})  # fmt: skip
    sys.exit(rc)


if __name__ == "__main__":
    main()
