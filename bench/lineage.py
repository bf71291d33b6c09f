"""Model-lineage check cost: `check_lineage(final, base, {})` against just reading both models' tensors.

Two random bf16 models of Qwen3-1.7B's shapes (about 3.4 GB each at 28 layers, in shards with an
index as the hub ships large models; final = base + noise of 2% of each tensor's norm) are written
to a temporary directory.
Both are read once to warm the page cache; then each way of reading is timed, median of --repeats,
from the warm cache, or with --cold (root only) from disk, the cache dropped before each timing:

  read (load)   every tensor of both models with `safe_open` into memory (`get_tensor` maps the file
                lazily, so the tensor is copied out: what loading the weights costs)
  read (touch)  every byte of every tensor passed through the CPU once, nothing kept (the floor)
  check         check_lineage(final, base, {})

Target: check within 1.5x of read (load).

Usage: python bench/lineage.py [--layers 28] [--repeats 3] [--cold] [--tmp DIR] [--save | --json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import safetensors
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from caches import write_json  # bench/ is on sys.path when a bench script runs
from posttrainbench.integrity.lineage import check_lineage

QWEN3_1_7B = {
    "model_type": "qwen3",
    "architectures": ["Qwen3ForCausalLM"],
    "hidden_size": 2048,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "intermediate_size": 6144,
    "vocab_size": 151936,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
}
NOISE = 0.02
LAYERS_PER_SHARD = 7
SAVED = Path("bench/measured/lineage-cpu-container.json")


def layer_shapes(i: int, c: dict) -> dict[str, tuple[int, ...]]:
    h, hd, inter = c["hidden_size"], c["head_dim"], c["intermediate_size"]
    q, kv = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    p = f"model.layers.{i}."
    return {
        p + "input_layernorm.weight": (h,),
        p + "post_attention_layernorm.weight": (h,),
        p + "self_attn.q_proj.weight": (q, h),
        p + "self_attn.k_proj.weight": (kv, h),
        p + "self_attn.v_proj.weight": (kv, h),
        p + "self_attn.o_proj.weight": (h, q),
        p + "self_attn.q_norm.weight": (hd,),
        p + "self_attn.k_norm.weight": (hd,),
        p + "mlp.gate_proj.weight": (inter, h),
        p + "mlp.up_proj.weight": (inter, h),
        p + "mlp.down_proj.weight": (h, inter),
    }


def shards(c: dict) -> list[dict[str, tuple[int, ...]]]:
    """Tensor shapes grouped into shards: the embedding and final norm, then LAYERS_PER_SHARD layers each."""
    first = {
        "model.embed_tokens.weight": (c["vocab_size"], c["hidden_size"]),
        "model.norm.weight": (c["hidden_size"],),
    }
    groups = [first]
    for start in range(0, c["num_hidden_layers"], LAYERS_PER_SHARD):
        group: dict[str, tuple[int, ...]] = {}
        for i in range(start, min(start + LAYERS_PER_SHARD, c["num_hidden_layers"])):
            group |= layer_shapes(i, c)
        groups.append(group)
    return groups


def write_models(base: Path, final: Path, config: dict) -> int:
    """Write both models shard by shard (memory stays at about two shards); return bytes per model."""
    generator = torch.Generator().manual_seed(0)
    groups = shards(config)
    weight_map: dict[str, str] = {}
    size = 0
    for model_dir in (base, final):
        model_dir.mkdir(parents=True)
        (model_dir / "config.json").write_text(json.dumps(config, indent=2))
    for n, group in enumerate(groups, 1):
        shard = f"model-{n:05d}-of-{len(groups):05d}.safetensors"
        b, f = {}, {}
        for name, shape in group.items():
            w = torch.randn(shape, generator=generator)
            w = w * 0.02 if len(shape) > 1 else 1 + 0.1 * w  # matrices as initialised, norms near 1
            noise = torch.randn(shape, generator=generator)
            b[name] = w.bfloat16()
            f[name] = (w + noise * (NOISE * w.norm() / noise.norm())).bfloat16()
            weight_map[name] = shard
            size += b[name].numel() * 2
        save_file(b, base / shard, {"format": "pt"})
        save_file(f, final / shard, {"format": "pt"})
    for model_dir in (base, final):
        index = {"metadata": {"total_size": size}, "weight_map": weight_map}
        (model_dir / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return size


def read(model_dirs: list[Path], each: Callable[[torch.Tensor], object]) -> None:
    for model_dir in model_dirs:
        for path in sorted(model_dir.glob("*.safetensors")):
            with safe_open(path, framework="pt") as f:
                for name in f.keys():
                    each(f.get_tensor(name))


DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def drop_page_cache() -> None:
    os.sync()
    DROP_CACHES.write_text("3\n")


def timed(fn: Callable[[], object], repeats: int, cold: bool) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        if cold:
            drop_page_cache()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", type=int, default=QWEN3_1_7B["num_hidden_layers"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--tmp", type=Path, default=None, help="where the two models are written (default: $TMPDIR)"
    )
    p.add_argument(
        "--cold",
        action="store_true",
        help="drop the page cache before each timing (needs root): both models read from disk, as a "
        "run's check reads them",
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("--save", action="store_true", help=f"write the result to {SAVED}")
    out.add_argument("--json", type=Path, default=None, help="write the result here (default: a temp file)")
    args = p.parse_args()
    config = QWEN3_1_7B | {"num_hidden_layers": args.layers}
    if args.cold and not os.access(DROP_CACHES, os.W_OK):
        p.error(f"--cold needs to write {DROP_CACHES} (root)")

    with tempfile.TemporaryDirectory(prefix="ptb-lineage-", dir=args.tmp) as tmp:
        base, final = Path(tmp) / "base", Path(tmp) / "final"
        t0 = time.perf_counter()
        size = write_models(base, final, config)
        print(
            f"wrote two models of {size / 1e9:.2f} GB ({args.layers} layers) in {time.perf_counter() - t0:.0f} s"
        )
        both = [base, final]
        read(both, lambda t: t.view(torch.int16).max())  # warm the page cache
        result = check_lineage(final, base, {})
        load, load_all = timed(lambda: read(both, torch.clone), args.repeats, args.cold)
        touch, touch_all = timed(
            lambda: read(both, lambda t: t.view(torch.int16).max()), args.repeats, args.cold
        )
        check, check_all = timed(lambda: check_lineage(final, base, {}), args.repeats, args.cold)

    print(f"{'':14} {'seconds':>8} {'GB/s':>6} {'check / this':>13}")
    for name, seconds in (("read (load)", load), ("read (touch)", touch), ("check", check)):
        print(f"{name:14} {seconds:>8.2f} {2 * size / 1e9 / seconds:>6.1f} {check / seconds:>12.2f}x")
    print(
        f"check / read (load): {check / load:.2f}x (target: <= 1.5x); verdict {result.verdict}: {result.summary}"
    )
    data = {
        "config": config,
        "bytes_per_model": size,
        "repeats": args.repeats,
        "page_cache": "dropped before each timing" if args.cold else "warm",
        "versions": {"torch": torch.__version__, "safetensors": safetensors.__version__},
        "torch_threads": torch.get_num_threads(),
        "seconds": {"read_load": load_all, "read_touch": touch_all, "check": check_all},
        "median_seconds": {"read_load": load, "read_touch": touch, "check": check},
        "ratio_check_to_read_load": check / load,
        "ratio_check_to_read_touch": check / touch,
        "verdict": result.verdict,
        "summary": result.summary,
    }
    if args.save:
        path = SAVED
    elif args.json:
        path = args.json
    else:
        fd, name = tempfile.mkstemp(prefix="lineage-", suffix=".json")
        os.close(fd)
        path = Path(name)
    write_json(path, data)


if __name__ == "__main__":
    main()
