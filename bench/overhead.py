"""Harness overhead per run: prepare + collect + record, without the agent and the evaluation.

Measured with the model cache holding only ptb-tiny, and again with large extra files in the
cache (sparse, so they cost no disk), to show that nothing in the cache is copied or read.
Target: under 5 s per run, independent of the cache size.

Usage: python bench/overhead.py [--runs 5] [--cache-gib 0 8 64] [--json bench/results/overhead.json]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path

from caches import growing_cache, write_json  # bench/ is on sys.path when a bench script runs


def measure(results: Path, runs: int) -> dict[str, float]:
    from posttrainbench import models, settings
    from posttrainbench.lifecycle.collect import collect
    from posttrainbench.lifecycle.prepare import prepare
    from posttrainbench.lifecycle.record import record
    from posttrainbench.specs import RunSpec

    snapshot = models.snapshot(models.get("ptb-tiny"), settings.model_cache())
    spec = RunSpec(task="arith", model="ptb-tiny", agent="noop", budget_seconds=600)
    times: dict[str, list[float]] = {"prepare": [], "collect": [], "record": []}
    for _ in range(runs):
        t0 = time.perf_counter()
        run = prepare(spec, results)
        t1 = time.perf_counter()
        shutil.copytree(snapshot, run.workspace / "final_model")  # what an agent would leave
        t2 = time.perf_counter()
        collect(run)
        t3 = time.perf_counter()
        record(run)
        t4 = time.perf_counter()
        times["prepare"].append(t1 - t0)
        times["collect"].append(t3 - t2)
        times["record"].append(t4 - t3)
    out = {k: statistics.median(v) for k, v in times.items()}
    out["total"] = sum(out.values())
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--cache-gib", type=int, nargs="+", default=[0, 8, 64])
    p.add_argument("--json", type=Path, default=Path("bench/results/overhead.json"))
    args = p.parse_args()

    rows = [
        {"cache_extra_gib": gib, **measure(tmp / f"results-{gib}", args.runs)}
        for gib, tmp in growing_cache(args.cache_gib)
    ]

    print(f"{'extra cache':>12} {'prepare s':>10} {'collect s':>10} {'record s':>10} {'total s':>10}")
    for r in rows:
        print(
            f"{r['cache_extra_gib']:>9} GiB {r['prepare']:>10.3f} {r['collect']:>10.3f}"
            f" {r['record']:>10.3f} {r['total']:>10.3f}"
        )
    ratio = rows[-1]["total"] / rows[0]["total"]
    print(f"largest / smallest cache total: {ratio:.2f}x (target: ~1x); target per run: < 5 s")
    write_json(args.json, {"runs": args.runs, "rows": rows, "ratio_largest_to_smallest": ratio})


if __name__ == "__main__":
    main()
