"""`ptb leaderboard` over many synthetic run records (target: under 2 s for 100,000).

Writes N run directories, each with a real run.json (RunRecord) and agent/summary.json: A agents x
the 7 benchmarks x the 4 base models x S seeds, plus zero-shot and instruct baselines; 3% of runs
flagged, 2% without a final score. Then times, median of --repeats:

  index (cold)     ptb index from nothing: every run.json read and inserted
  index (refresh)  the same with nothing changed: one stat per run
  leaderboard (a run changed)
                   `ptb leaderboard RESULTS --format json` as a user runs it after a run changed (one
                   run.json touched before each call): a fresh process, Python start-up, refresh (that
                   run read again), load, aggregation with a 2000-resample bootstrap, output
  leaderboard      the same with nothing changed: the board the index kept is read back
  aggregate only   load from the up-to-date index + aggregate, in this process

Usage: python bench/leaderboard.py [--runs 100000] [--repeats 3] [--tmp DIR] [--save | --json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from caches import write_json  # bench/ is on sys.path when a bench script runs
from posttrainbench import models
from posttrainbench.results import index
from posttrainbench.results.aggregate import aggregate
from posttrainbench.specs import IntegrityDecision, Outcome, RunRecord, RunSpec

TASKS = ("aime2025", "arenahardwriting", "bfcl", "gpqamain", "gsm8k", "healthbench", "humaneval")
MODELS = ("Qwen3-1.7B-Base", "Qwen3-4B-Base", "SmolLM3-3B-Base", "gemma-3-4b-pt")
SEEDS = 7


def write_runs(root: Path, n: int) -> int:
    rng = random.Random(0)
    cards = {m: models.get(m) for m in MODELS}
    agents = max(1, n // (len(TASKS) * len(MODELS) * SEEDS))
    plan = [("zero-shot", 0), ("instruct", 0)] + [
        (f"agent{a}", s) for a in range(agents) for s in range(SEEDS)
    ]
    count = 0
    for agent, seed in plan:
        for task in TASKS:
            for model in MODELS:
                base = 0.05 + 0.1 * rng.random()
                final = None if rng.random() < 0.02 else min(1.0, base + 0.4 * rng.random())
                flagged = rng.random() < 0.03
                name = f"{task}__{model}__{agent}__s{seed}"
                d = root / agent / name
                (d / "agent").mkdir(parents=True)
                rec = RunRecord(
                    run_id=name, spec=RunSpec(task=task, model=model, agent=agent, budget_seconds=36000,
                                              seed=seed),
                    model_card=cards[model], results_root=str(root),
                    integrity=IntegrityDecision(flagged=flagged, reasons=["contamination"] * flagged),
                    outcome=Outcome(status="complete" if final is not None else "incomplete", flagged=flagged,
                                    base_score=base, final_score=final, minutes_used=60 * 10 * rng.random()),
                )  # fmt: skip
                (d / "run.json").write_text(rec.model_dump_json(indent=2))
                (d / "agent" / "summary.json").write_text(json.dumps(
                    {"events": 10, "tokens": {"input": rng.randrange(10**7), "output": rng.randrange(10**6)},
                     "cost_usd": round(50 * rng.random(), 2)}))  # fmt: skip
                count += 1
    return count


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tmp", type=Path, default=None)
    ap.add_argument("--save", action="store_true", help="write bench/measured/leaderboard-<machine>.json")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--machine", default="cpu-container")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        root = Path(tmp) / "results"
        t0 = time.perf_counter()
        n = write_runs(root, args.runs)
        print(f"wrote {n} run directories in {time.perf_counter() - t0:.1f} s")

        def cold() -> None:
            (root / index.INDEX_FILE).unlink(missing_ok=True)
            index.build(root)

        rows = {"index (cold)": timed(cold, 1)}
        rows["index (refresh)"] = timed(lambda: index.build(root), args.repeats)
        cli = [sys.executable, "-m", "posttrainbench", "leaderboard", str(root), "--format", "json"]
        env = {**os.environ, "COLUMNS": "200"}
        changing = next(root.glob("*/*/run.json"))

        def changed() -> None:
            os.utime(changing)
            subprocess.run(cli, check=True, capture_output=True, env=env)

        rows["leaderboard (a run changed)"] = timed(changed, args.repeats)
        rows["leaderboard"] = timed(lambda: subprocess.run(cli, check=True, capture_output=True, env=env),
                                    args.repeats)  # fmt: skip
        rows["aggregate only"] = timed(
            lambda: aggregate(index.load_scored(root, refresh=False)), args.repeats
        )
        board = aggregate(index.load_scored(root))
    print(f"\n{n} runs, {len(board.rows)} leaderboard rows, target: leaderboard under 2 s")
    print(f"{'step':<28}{'seconds':>10}")
    for step, s in rows.items():
        print(f"{step:<28}{s:>10.2f}")
    result = {"runs": n, "rows": len(board.rows), "seconds": {k: round(v, 3) for k, v in rows.items()},
              "target_seconds": 2.0, "machine": args.machine, "cpus": os.cpu_count()}  # fmt: skip
    if args.save or args.json:
        write_json(
            args.json or Path(__file__).parent / "measured" / f"leaderboard-{args.machine}.json", result
        )


if __name__ == "__main__":
    main()
