#!/usr/bin/env python3
"""N-gram contamination scanning: a test set becomes an index of hashed n-grams, and any text is
scanned for them; a test item counts as found in a file when most of its n-grams are there.

Text is normalised the same way on both sides: lower case, words (letters, digits, non-ASCII) and
single ASCII punctuation marks as tokens, so `347+58` and `347 + 58` match while `1347 + 58` does
not match `347 + 58`; JSON string escapes (\\n, \\", ...) count as the characters they stand for.
Items of at least N tokens are split into overlapping N-grams; a shorter item is one n-gram of its
own length. An n-gram is a 64-bit hash combined from per-token CRC-32s, so the index holds no test
text: the agent gets the same checker and index in its workspace (`tools/`) without the test set.

This file uses only numpy and the standard library (pyarrow, when installed, for parquet/arrow),
because it is also copied into the agent's workspace and run there:

    python tools/contamination_check.py FILE_OR_DIR ...
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

N = 8  # tokens per n-gram: long enough that honest text rarely shares one with a test item
MIN_TOKENS = 3  # shorter items (one CJK sentence is one token) would match by chance: not indexed
ITEM_RATIO = 0.5  # share of an item's n-grams that must appear in a file for the item to count
CHUNK_BYTES = 32 * 2**20
MULT = np.uint64(0x100000001B3)
PREFILTER_BITS = 24
TEXT_SUFFIXES = {
    *(".jsonl", ".json", ".csv", ".tsv", ".txt", ".md", ".yaml", ".yml", ".toml", ".cfg", ".ini"),
    *(".py", ".sh", ".bash", ".ipynb", ".js", ".ts", ".jinja"),
}
TABLE_SUFFIXES = {".parquet", ".arrow"}
DATA_SUFFIXES = TEXT_SUFFIXES | TABLE_SUFFIXES

_LOWER = bytes(c + 32 if 65 <= c <= 90 else c for c in range(256))
_ESCAPES = [(b"\\n", b" "), (b"\\t", b" "), (b"\\r", b" "), (b'\\"', b'"'), (b"\\/", b"/"), (b"\\\\", b"\\")]
# Byte classes: 0 separates tokens (whitespace, control characters), 1 is part of a word (ASCII
# letters and digits, and every byte of a non-ASCII character), 2 is a one-character token.
_CLASS = np.array(
    [0 if c <= 32 or c == 127 else 1 if chr(c).isalnum() or c >= 128 else 2 for c in range(256)],
    dtype=np.int8,
)
_C1, _C2, _C3 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9)
_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


def token_spans(data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The normalised bytes and each token's [start, end) in them, computed with numpy only."""
    data = data.translate(_LOWER)
    for escape, char in _ESCAPES:
        if escape in data:
            data = data.replace(escape, char)
    arr = np.frombuffer(data, dtype=np.uint8)
    cls = np.take(_CLASS, arr)
    word, single = cls == 1, cls == 2
    first, last = single.copy(), single.copy()
    first[1:] |= word[1:] & ~word[:-1]
    first[:1] |= word[:1]
    last[:-1] |= word[:-1] & ~word[1:]
    last[-1:] |= word[-1:]
    return arr, np.flatnonzero(first), np.flatnonzero(last) + 1


def token_hashes(data: bytes) -> np.ndarray:
    """A 64-bit hash per token from its length and its first and last 8 bytes (read as integers,
    per token rather than per byte), mixed so that similar tokens get unrelated hashes. Tokens of
    up to 8 bytes are hashed from all their bytes."""
    arr, starts, ends = token_spans(data)
    if not len(starts):
        return np.zeros(0, dtype=np.uint64)
    padded = np.concatenate([arr, np.zeros(8, dtype=np.uint8)])
    windows = np.ndarray((len(arr),), dtype="<u8", buffer=padded, strides=(1,))  # 8 bytes at each offset
    length = (ends - starts).astype(np.uint64)
    short = np.minimum(length, np.uint64(8))
    mask = np.where(short == 8, _ONES, (np.uint64(1) << (short * np.uint64(8))) - np.uint64(1))
    head = windows[starts] & mask
    tail = windows[np.maximum(ends - 8, starts)] & mask
    h = head * _C1 ^ tail * _C2 ^ length * _C3
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(29)
    return h


def gram_hashes(h: np.ndarray, lengths: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
    """(k, hashes of every k-gram) for each wanted k, from one rolling pass up to the largest."""
    wanted = set(lengths)
    g = h.copy()
    for k in range(1, max(wanted, default=0) + 1):
        if k > 1:
            g = g[:-1] * MULT ^ h[k - 1 :]
        if k in wanted and len(g):
            yield k, g


@dataclass
class Index:
    """Hashed n-grams of a test set: `hashes` sorted and unique; the items of hashes[j] are
    items[offsets[j]:offsets[j + 1]]; `item_grams[i]` is item i's number of distinct n-grams.
    Items shorter than MIN_TOKENS are listed in `too_short` and not searched for."""

    n: int
    lengths: np.ndarray
    hashes: np.ndarray
    offsets: np.ndarray
    items: np.ndarray
    item_grams: np.ndarray
    item_ids: list[str]
    too_short: list[str]

    @classmethod
    def build(cls, texts: dict[str, str], n: int = N) -> Index:
        pairs, counts, ids, lengths, short = [], [], [], set(), []
        for item_id, text in texts.items():
            h = token_hashes(text.encode())
            if len(h) < MIN_TOKENS:
                short.append(item_id)
                continue
            k = min(n, len(h))
            lengths.add(k)
            grams = np.unique(next(gram_hashes(h, [k]))[1])
            pairs.append(np.stack([grams, np.full(len(grams), len(ids), dtype=np.uint64)], axis=1))
            counts.append(len(grams))
            ids.append(item_id)
        table = np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.uint64)
        table = table[np.lexsort((table[:, 1], table[:, 0]))]
        hashes, starts = np.unique(table[:, 0], return_index=True)
        return cls(
            n=n,
            lengths=np.array(sorted(lengths), dtype=np.int64),
            hashes=hashes,
            offsets=np.append(starts, len(table)).astype(np.int64),
            items=table[:, 1].astype(np.int64),
            item_grams=np.array(counts, dtype=np.int64),
            item_ids=ids,
            too_short=short,
        )

    def to_bytes(self) -> bytes:
        out = io.BytesIO()
        np.savez_compressed(
            out,
            n=self.n,
            lengths=self.lengths,
            hashes=self.hashes,
            offsets=self.offsets,
            items=self.items,
            item_grams=self.item_grams,
            item_ids=np.array(self.item_ids, dtype=str),
            too_short=np.array(self.too_short, dtype=str),
        )
        return out.getvalue()

    @classmethod
    def load(cls, path: Path) -> Index:
        with np.load(path) as z:
            return cls(
                n=int(z["n"]),
                lengths=z["lengths"],
                hashes=z["hashes"],
                offsets=z["offsets"],
                items=z["items"],
                item_grams=z["item_grams"],
                item_ids=[str(s) for s in z["item_ids"]],
                too_short=[str(s) for s in z["too_short"]],
            )

    def __len__(self) -> int:
        return len(self.item_ids)


class Scanner:
    """Finds which of the index's n-grams occur in a stream of text chunks."""

    def __init__(self, index: Index):
        self.index = index
        self.shift = np.uint64(64 - PREFILTER_BITS)
        self.table = np.zeros(1 << PREFILTER_BITS, dtype=bool)
        self.table[index.hashes >> self.shift] = True
        self.lengths = [int(k) for k in index.lengths]

    def matched(self, chunks: Iterable[bytes]) -> np.ndarray:
        """Positions in index.hashes of the n-grams found in the text (chunks are joined by a
        token break; an n-gram spanning two chunks is found too)."""
        found: list[np.ndarray] = []
        carry = np.zeros(0, dtype=np.uint64)
        span = max(self.lengths, default=1) - 1
        for chunk in chunks:
            h = np.concatenate([carry, token_hashes(chunk)])
            for _, g in gram_hashes(h, self.lengths):
                candidates = g[np.take(self.table, g >> self.shift)]
                if len(candidates):
                    pos = np.minimum(
                        np.searchsorted(self.index.hashes, candidates), len(self.index.hashes) - 1
                    )
                    found.append(pos[self.index.hashes[pos] == candidates])
            carry = h[len(h) - span :] if span else carry
        return np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)

    def items(self, positions: np.ndarray) -> dict[str, float]:
        """item id -> share of its n-grams found, for items at or above ITEM_RATIO."""
        if not len(positions):
            return {}
        idx = self.index
        per_gram = [idx.items[idx.offsets[p] : idx.offsets[p + 1]] for p in positions]
        counts = np.bincount(np.concatenate(per_gram), minlength=len(idx))
        ratio = counts / np.maximum(idx.item_grams, 1)
        return {idx.item_ids[i]: round(float(ratio[i]), 3) for i in np.flatnonzero(ratio >= ITEM_RATIO)}


def read_chunks(path: Path) -> Iterator[bytes]:
    """The file's text in chunks cut at line ends; parquet/arrow: the string cells of every column."""
    if path.suffix in TABLE_SUFFIXES:
        yield from _table_chunks(path)
        return
    with path.open("rb") as f:
        rest = b""
        while block := f.read(CHUNK_BYTES):
            block = rest + block
            cut = block.rfind(b"\n") + 1 or len(block)
            rest = block[cut:]
            yield block[:cut]
        if rest:
            yield rest


def _table_chunks(path: Path) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.suffix == ".parquet":
        batches: Iterable = pq.ParquetFile(path).iter_batches()
    else:
        try:
            batches = pa.ipc.open_file(pa.memory_map(str(path))).to_batches()
        except pa.ArrowInvalid:  # the streaming format, as `datasets` writes its cache files
            batches = pa.ipc.open_stream(pa.memory_map(str(path)))
    for batch in batches:
        for column in batch.columns:
            yield b"\n".join(_strings(column.to_pylist()))


def _strings(values: list) -> Iterator[bytes]:
    for v in values:
        if isinstance(v, str):
            yield v.encode()
        elif isinstance(v, dict):
            yield from _strings(list(v.values()))
        elif isinstance(v, list):
            yield from _strings(v)


def data_files(root: Path, exclude: Iterable[str] = ()) -> list[Path]:
    """Data and code files under root (or root itself), relative paths in `exclude` left out."""
    skip = set(exclude)
    if root.is_file():
        return [root]
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and not p.is_symlink()
        and p.suffix in DATA_SUFFIXES
        and str(p.relative_to(root)) not in skip
    )


def scan_file(scanner: Scanner, path: Path) -> dict[str, float]:
    return scanner.items(scanner.matched(read_chunks(path)))


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    p = argparse.ArgumentParser(
        description="Check training data for overlap with the benchmark's test set (hashed n-grams; "
        "the test set itself is not here). Exit code 1 when a file contains test items.",
    )
    p.add_argument("paths", nargs="+", type=Path, help="files or directories to scan")
    p.add_argument("--index", type=Path, default=here / "test_ngrams.npz", help="the test set's n-gram index")
    args = p.parse_args(argv)
    scanner = Scanner(Index.load(args.index))
    total: set[str] = set()
    for root in args.paths:
        for path in data_files(root):
            found = scan_file(scanner, path)
            total |= set(found)
            if found:
                print(
                    json.dumps({"file": str(path), "test_items": len(found), "examples": sorted(found)[:10]})
                )
    print(
        f"{len(total)} of {len(scanner.index)} test items found in the scanned files "
        f"(an item counts when {ITEM_RATIO:.0%} of its {scanner.index.n}-grams appear in one file)",
        file=sys.stderr,
    )
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
