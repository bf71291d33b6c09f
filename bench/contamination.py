"""Contamination scan throughput: the harness's scanner against a plain reference on the same windows
(`grep -F -c -f` over the normalised text, with each item's windows every S bytes as fixed strings), over generated data files of mixed formats, with the index of every benchmark's test set
at once.

    python bench/contamination.py [--mb 1024] [--json bench/measured/contamination-<machine>.json]

Both are timed on one core (grep is single-threaded; the scanner runs in this process). Needs the
benchmark data (PTB_DATA_DIR, default ../shared/data). The data files are written from the
benchmarks' own allowed (train) splits and random words, with a few test items planted, so the
scanner's answer is checked as well as timed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from caches import write_json
from posttrainbench import tasks
from posttrainbench.integrity.ngrams import (
    LONG_MIN,
    SHORT_MAX,
    SHORT_MIN,
    Index,
    S,
    Scanner,
    W,
    data_files,
    normalise,
    read_chunks,
    scan_file,
)

BENCHMARKS = ("aime2025", "arenahardwriting", "bfcl", "gpqamain", "gsm8k", "healthbench", "humaneval")
PLANTED = 25


def test_sets() -> dict[str, str]:
    keys = {}
    for name in BENCHMARKS:
        task = tasks.get(name)
        keys |= {f"{name}/{k}": v for k, v in task.contamination_keys(task.data()).items()}
    return keys


def patterns(keys: dict[str, str]) -> list[str]:
    """The same detection as plain text: each normalised item's windows of W bytes every S bytes (a
    search at every offset, as grep's, finds all of them in a verbatim copy); short items whole."""
    out = set()
    for text in keys.values():
        n = normalise(text.encode())
        if len(n) >= LONG_MIN:
            out.update(n[i : i + W] for i in range(0, len(n) - W + 1, S))
        elif SHORT_MIN <= len(n) <= SHORT_MAX:
            out.add(n)
    return sorted(p.decode(errors="replace") for p in out)


def write_data(root: Path, mb: int, keys: dict[str, str], rng: random.Random) -> list[str]:
    """About `mb` MB of jsonl, csv, txt, parquet and code files; returns the planted item ids."""
    train = [
        json.loads(line)["question"]
        for line in (Path(os.environ["PTB_DATA_DIR"]) / "gsm8k" / "train.jsonl").read_text().splitlines()
    ]
    words = sorted({w for q in train for w in q.split()})
    planted = rng.sample(sorted(keys), PLANTED)
    lines = [q for q in train] + [" ".join(rng.choices(words, k=rng.randrange(20, 80))) for _ in range(4000)]
    lines += [keys[k] for k in planted]
    per_file = 16 * 2**20
    formats = ("jsonl", "csv", "txt", "parquet", "py")
    written, i = 0, 0
    while written < mb * 2**20:
        fmt = formats[i % len(formats)]
        rows, size = [], 0
        while size < per_file:
            row = rng.choice(lines[:-PLANTED]) if rows or i >= len(planted) else None
            row = row or keys[planted[i]]
            rows.append(row)
            size += len(row) + 16
        path = root / f"part-{i:04d}.{fmt}"
        if fmt == "jsonl":
            path.write_text("".join(json.dumps({"text": r}) + "\n" for r in rows))
        elif fmt == "csv":
            path.write_text("".join('"' + r.replace('"', '""') + '",0\n' for r in rows))
        elif fmt == "txt":
            path.write_text("\n".join(rows))
        elif fmt == "parquet":
            pq.write_table(pa.table({"text": rows}), path)
        else:
            path.write_text("DATA = [\n" + "".join(f"    {r!r},\n" for r in rows) + "]\n")
        written += path.stat().st_size
        i += 1
    return planted[: min(i, PLANTED)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mb", type=int, default=1024, help="size of the generated data (MB)")
    p.add_argument("--json", type=Path, help="where to write the result")
    args = p.parse_args()
    os.environ.setdefault("PTB_DATA_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    rng = random.Random(0)
    keys = test_sets()
    t0 = time.perf_counter()
    index = Index.build(keys)
    build_s = time.perf_counter() - t0
    grams = patterns(keys)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        root.mkdir()
        planted = write_data(root, args.mb, keys, rng)
        files = data_files(root)
        size = sum(f.stat().st_size for f in files)
        (Path(tmp) / "patterns.txt").write_text("\n".join(grams) + "\n")
        # grep reads the text already normalised (what the scanner reads after normalising; its
        # normalisation is not timed): each file's text, one line per scanner chunk
        plain = Path(tmp) / "normalised"
        plain.mkdir()
        for f in files:
            (plain / f.name).write_bytes(b"\n".join(normalise(c) for c in read_chunks(f)))
        subprocess.run(
            ["cat", *map(str, files), *map(str, plain.iterdir())], stdout=subprocess.DEVNULL, check=True
        )

        t0 = time.perf_counter()
        scanner = Scanner(index)
        found = {item for f in files for item in scan_file(scanner, f)}
        scan_s = time.perf_counter() - t0

        def grep(paths: list[Path]) -> float:
            t0 = time.perf_counter()
            subprocess.run(
                [shutil.which("grep"), "-F", "-c", "-f", str(Path(tmp) / "patterns.txt"), *map(str, paths)],
                env={**os.environ, "LC_ALL": "C"},
                stdout=subprocess.DEVNULL,
            )
            return time.perf_counter() - t0

        grep_s, grep_raw_s = grep(sorted(plain.iterdir())), grep(files)
    missed = sorted(set(planted) - found)
    mb = size / 1e6
    rows = [
        {"method": name, "seconds": round(sec, 2), "mb_per_s": round(mb / sec, 1)}
        for name, sec in (
            ("ptb window scanner", scan_s),
            ("grep -F -c -f, normalised text", grep_s),
            ("grep -F -c -f, the files as they are", grep_raw_s),
        )
    ]
    print(
        f"{mb:.0f} MB in {len(files)} files; {len(keys)} test items, {len(index.hashes)} distinct windows "
        f"(index built in {build_s:.1f}s), {len(grams)} grep patterns"
    )
    print(f"{'method':38} {'seconds':>9} {'MB/s':>8}")
    for r in rows:
        print(f"{r['method']:38} {r['seconds']:>9} {r['mb_per_s']:>8}")
    ratio = scan_s / grep_s
    print(
        f"scanner / grep on normalised text: {ratio:.2f}x (target <= 2x); on the files: "
        f"{scan_s / grep_raw_s:.2f}x; planted items found: {len(planted) - len(missed)}/{len(planted)}"
    )
    if args.json:
        write_json(args.json, {
            "mb": round(mb, 1), "files": len(files), "test_items": len(keys), "windows": len(index.hashes), "too_short": len(index.too_short),
            "rows": rows, "scanner_over_grep": round(ratio, 3), "scanner_over_grep_raw": round(scan_s / grep_raw_s, 3), "planted": len(planted), "missed": missed,
            "cpu_cores_used": 1,
        })  # fmt: skip


if __name__ == "__main__":
    main()
