"""Sandbox start-up: the time from "start the agent" to its first command running in the sandbox and
back, per sandbox and network policy, with a small and a very large model cache.

One session is: mount the copy-on-write cache layer, start the proxies (network allowlist/none),
build the mount plan, run `true` inside the sandbox, then tear everything down. The same session
with `--sandbox none --network open` is the baseline: what the harness costs without isolation.
Large cache files are sparse (no disk); the target is a start-up independent of the cache size,
because nothing in the cache is copied or read.

Usage: python bench/sandbox_startup.py [--repeats 10] [--cache-gib 0 64] [--json PATH]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from caches import growing_cache, write_json  # bench/ is on sys.path when a bench script runs

CONFIGS = [("none", "open"), ("bwrap", "open"), ("bwrap", "allowlist"), ("bwrap", "none")]


def measure(results: Path, sandbox_name: str, network: str, repeats: int) -> tuple[float, str]:
    """Median seconds for one whole session running `true`, and how the cache was given."""
    from posttrainbench import sandbox
    from posttrainbench.agents import registry
    from posttrainbench.lifecycle.prepare import prepare
    from posttrainbench.lifecycle.session import agent_context, open_session
    from posttrainbench.specs import RunSpec

    spec = RunSpec(
        task="arith",
        model="ptb-tiny",
        agent="noop",
        budget_seconds=600,
        sandbox=sandbox_name,
        network=network,
    )
    run = prepare(spec, results)
    record = run.load()
    agent = registry.get("noop")
    box = sandbox.resolve(sandbox_name, None)
    ctx = agent_context(run, record, time.time() + 600)
    times, layer = [], ""
    for _ in range(repeats):
        t0 = time.perf_counter()
        with open_session(run, record, agent, ctx, ["true"], box, run.agent_dir) as session:
            subprocess.run(session.argv, env=session.env, cwd=session.plan.workdir, check=True)
            layer = "overlay" if session.layer.available else "read-only"
        times.append(time.perf_counter() - t0)
    return statistics.median(times), layer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--cache-gib", type=int, nargs="+", default=[0, 64])
    p.add_argument("--json", type=Path, default=Path("bench/results/sandbox_startup.json"))
    args = p.parse_args()
    if shutil.which("bwrap") is None:
        raise SystemExit("bubblewrap (bwrap) is not installed: apt-get install bubblewrap")

    rows = []
    for gib, tmp in growing_cache(args.cache_gib):
        for box, network in CONFIGS:
            seconds, layer = measure(tmp / f"results-{gib}-{box}-{network}", box, network, args.repeats)
            rows.append(
                {
                    "cache_extra_gib": gib,
                    "sandbox": box,
                    "network": network,
                    "cache": layer,
                    "seconds": seconds,
                }
            )

    base = {r["cache_extra_gib"]: r["seconds"] for r in rows if r["sandbox"] == "none"}
    print(
        f"{'extra cache':>12} {'sandbox':>8} {'network':>10} {'cache':>10} {'median s':>9} {'vs none/open':>13}"
    )
    for r in rows:
        r["ratio_to_unsandboxed"] = r["seconds"] / base[r["cache_extra_gib"]]
        print(
            f"{r['cache_extra_gib']:>8} GiB {r['sandbox']:>8} {r['network']:>10} {r['cache']:>10} {r['seconds']:>9.3f}"
            f" {r['ratio_to_unsandboxed']:>12.2f}x"
        )
    small, large = min(args.cache_gib), max(args.cache_gib)
    by = {(r["cache_extra_gib"], r["sandbox"], r["network"]): r["seconds"] for r in rows}
    growth = {f"{b}/{n}": by[(large, b, n)] / by[(small, b, n)] for b, n in CONFIGS}
    print(f"{large} GiB / {small} GiB cache: " + ", ".join(f"{k} {v:.2f}x" for k, v in growth.items()))
    write_json(args.json, {"repeats": args.repeats, "rows": rows, "cache_growth": growth})


if __name__ == "__main__":
    main()
