#!/usr/bin/env python3
"""Contamination scanning: a test set becomes an index of hashed text windows, and any text is
scanned for them; a test item counts as found in a file when most of its windows are there.

Text is normalised the same way on both sides: ASCII letters are lower-cased; whitespace, control
characters, backslashes and the JSON escapes of whitespace (\\n, \\t, \\r) are dropped, so
`347+58`, `347 + 58` and a JSON-escaped, re-wrapped copy all read `347+58`. An item of at least
LONG_MIN bytes is indexed as every window of W bytes; the data is read in windows starting
every S bytes (whole 8-byte words, so hashing is a few vector operations per word rather than per
byte), and any verbatim copy of LONG_MIN bytes contains one of them. An item of SHORT_MIN to 8
bytes (the toy task's `34+58`) is matched whole at every offset, not next to another digit (so
`1347+58` does not contain `347+58`); items in between are too short to tell from chance and are
listed as such. Windows are 64-bit hashes, so the index holds no test text: the agent gets the same
checker and index in its workspace (`tools/`) without the test set.

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

WORDS = 6  # 8-byte words per window
W = 8 * WORDS  # bytes of normalised text per window: about eight words of prose
S = 16  # the data's windows start every S bytes
LONG_MIN = W + S - 1
SHORT_MIN, SHORT_MAX = 5, 8
ITEM_RATIO = 0.5  # share of an item's windows (of those a verbatim copy shows) that must be found
CHUNK_BYTES = 8 * 2**20
PREFILTER_BITS = 24  # a 16 MiB membership table in front of the exact lookup
TEXT_SUFFIXES = {
    *(".jsonl", ".json", ".csv", ".tsv", ".txt", ".md", ".yaml", ".yml", ".toml", ".cfg", ".ini"),
    *(".py", ".sh", ".bash", ".ipynb", ".js", ".ts", ".jinja"),
}
TABLE_SUFFIXES = {".parquet", ".arrow"}
DATA_SUFFIXES = TEXT_SUFFIXES | TABLE_SUFFIXES

_LOWER = bytes(c + 32 if 65 <= c <= 90 else c for c in range(256))
_DROP = bytes([*range(33), 92, 127])  # whitespace, control characters and the backslash
_ESCAPES = (b"\\n", b"\\t", b"\\r")  # in JSON strings: whitespace, dropped with their backslash
_DIGIT = np.zeros(256, dtype=bool)
_DIGIT[48:58] = True
_DROPPED = np.zeros(256, dtype=bool)
_DROPPED[list(_DROP)] = True
_K = [np.uint64((0x9E3779B97F4A7C15 * (2 * i + 1)) % 2**64 | 1) for i in range(WORDS + 1)]


def _unescape(data: bytes) -> bytes:
    if b"\\" in data:
        for escape in _ESCAPES:
            data = data.replace(escape, b" ")
    return data


def normalise(data: bytes) -> bytes:
    return _unescape(data).translate(_LOWER, _DROP)


def _mix(h: np.ndarray) -> np.ndarray:
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(29)
    return h


def _words(data: bytes) -> np.ndarray:
    """The bytes as little-endian 8-byte words, zero-padded."""
    return np.frombuffer(data + b"\0" * (-len(data) % 8), dtype="<u8")


def _at_every_byte(data: bytes) -> np.ndarray:
    """The 8 bytes starting at each offset, as one word each (a view, nothing copied)."""
    padded = np.frombuffer(data + b"\0" * 8, dtype=np.uint8)
    return np.ndarray((len(data),), dtype="<u8", buffer=padded, strides=(1,))


def _long(words: list[np.ndarray]) -> np.ndarray:
    """The hash of each window, given its WORDS words as arrays (word i of every window in words[i])."""
    h = words[0] * _K[0]
    for k, w in zip(_K[1:], words[1:], strict=False):
        h ^= w * k
    return _mix(h)


def _short(words: np.ndarray, length: int) -> np.ndarray:
    mask = np.uint64((1 << (8 * length)) - 1)
    return _mix((words & mask) * _K[0] ^ np.uint64(length) * _K[WORDS])


@dataclass
class Index:
    """Hashed windows of a test set: `hashes` sorted and unique; the items of hashes[j] are
    items[offsets[j]:offsets[j + 1]]; `expected[i]` is how many distinct windows a verbatim copy of
    item i shows at least (1 for a short item). Items too short to check are in `too_short`."""

    hashes: np.ndarray
    offsets: np.ndarray
    items: np.ndarray
    expected: np.ndarray
    short_lengths: np.ndarray
    item_ids: list[str]
    too_short: list[str]

    @classmethod
    def build(cls, texts: dict[str, str]) -> Index:
        pairs, expected, ids, short_lengths, too_short = [], [], [], set(), []
        for item_id, text in texts.items():
            n = normalise(text.encode())
            if len(n) >= LONG_MIN:
                v, m = _at_every_byte(n), len(n) - W + 1
                hashes = np.unique(_long([v[8 * i : 8 * i + m] for i in range(WORDS)]))
                expected.append((len(n) - W + 1) // S)
            elif SHORT_MIN <= len(n) <= SHORT_MAX:
                hashes = _short(_at_every_byte(n)[:1], len(n))
                short_lengths.add(len(n))
                expected.append(1)
            else:
                too_short.append(item_id)
                continue
            pairs.append(np.stack([hashes, np.full(len(hashes), len(ids), dtype=np.uint64)], axis=1))
            ids.append(item_id)
        table = np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.uint64)
        table = table[np.lexsort((table[:, 1], table[:, 0]))]
        hashes, starts = np.unique(table[:, 0], return_index=True)
        return cls(
            hashes=hashes,
            offsets=np.append(starts, len(table)).astype(np.int64),
            items=table[:, 1].astype(np.int64),
            expected=np.array(expected, dtype=np.int64),
            short_lengths=np.array(sorted(short_lengths), dtype=np.int64),
            item_ids=ids,
            too_short=too_short,
        )

    def to_bytes(self) -> bytes:
        out = io.BytesIO()
        np.savez_compressed(
            out,
            hashes=self.hashes,
            offsets=self.offsets,
            items=self.items,
            expected=self.expected,
            short_lengths=self.short_lengths,
            item_ids=np.array(self.item_ids, dtype=str),
            too_short=np.array(self.too_short, dtype=str),
        )
        return out.getvalue()

    @classmethod
    def load(cls, path: Path) -> Index:
        with np.load(path) as z:
            return cls(
                hashes=z["hashes"],
                offsets=z["offsets"],
                items=z["items"],
                expected=z["expected"],
                short_lengths=z["short_lengths"],
                item_ids=[str(s) for s in z["item_ids"]],
                too_short=[str(s) for s in z["too_short"]],
            )

    def __len__(self) -> int:
        return len(self.item_ids)


class Scanner:
    """Finds which of the index's windows occur in a stream of text chunks."""

    def __init__(self, index: Index):
        self.index = index
        self.shift = np.uint64(64 - PREFILTER_BITS)
        self.table = np.zeros(1 << PREFILTER_BITS, dtype=bool)
        self.table[index.hashes >> self.shift] = True

    def _lookup(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(where in h, which index position) for the hashes of h that are in the index."""
        where = np.flatnonzero(np.take(self.table, h >> self.shift))
        pos = np.minimum(np.searchsorted(self.index.hashes, h[where]), len(self.index.hashes) - 1)
        hit = self.index.hashes[pos] == h[where]
        return where[hit], pos[hit]

    def _long_in(self, data: bytes) -> np.ndarray:
        words = _words(data)
        step = S // 8
        n = (len(words) - WORDS) // step + 1  # windows start at every step-th word
        if n <= 0:
            return np.zeros(0, dtype=np.int64)
        return self._lookup(_long([words[i : i + step * (n - 1) + 1 : step] for i in range(WORDS)]))[1]

    def _short_in(self, text: bytes) -> Iterator[np.ndarray]:
        """Short items, whole, at every offset of the normalised text, but not continuing a number:
        `1347+58` holds no `347+58`, while `92 34+58` (dropped whitespace between) does."""
        lowered = np.frombuffer(text.translate(_LOWER), dtype=np.uint8)
        kept = np.flatnonzero(~_DROPPED[lowered])
        raw = lowered[kept]
        data = raw.tobytes()
        joined = np.zeros(len(kept) + 1, dtype=bool)  # joined[i]: chars i-1 and i were adjacent
        joined[1:-1] = np.diff(kept) == 1
        digit = _DIGIT[raw]
        every = _at_every_byte(data)
        for length in (int(x) for x in self.index.short_lengths):
            if len(data) < length:
                continue
            where, pos = self._lookup(_short(every[: len(data) - length + 1], length))
            end = where + length
            before = joined[where] & digit[where] & digit[np.maximum(where - 1, 0)]
            after = joined[end] & digit[end - 1] & digit[np.minimum(end, len(raw) - 1)]
            yield pos[~(before | after)]

    def matched(self, chunks: Iterable[bytes]) -> np.ndarray:
        """Positions in index.hashes of the windows found in the text; a window spanning two
        chunks is found too (each chunk is read with the end of the one before)."""
        found: list[np.ndarray] = []
        carry = b""
        for chunk in chunks:
            text = _unescape(chunk)
            data = carry + text.translate(_LOWER, _DROP)
            found.append(self._long_in(data))
            if len(self.index.short_lengths):
                found.extend(self._short_in(text))
            carry = data[-(LONG_MIN - 1) :]
        return np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)

    def items(self, positions: np.ndarray) -> dict[str, float]:
        """item id -> share of its windows found (of those a verbatim copy shows, at most 1), for
        items at or above ITEM_RATIO."""
        if not len(positions):
            return {}
        idx = self.index
        per_window = [idx.items[idx.offsets[p] : idx.offsets[p + 1]] for p in positions]
        counts = np.bincount(np.concatenate(per_window), minlength=len(idx))
        ratio = np.minimum(counts / np.maximum(idx.expected, 1), 1.0)
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
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                text = column.buffers()[2]  # the cells' text end to end (a window may join two cells)
                yield text.to_pybytes() if text else b""
            else:
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
        description="Check training data for overlap with the benchmark's test set (hashed text windows; "
        "the test set itself is not here). Exit code 1 when a file contains test items.",
    )
    p.add_argument("paths", nargs="+", type=Path, help="files or directories to scan")
    p.add_argument("--index", type=Path, default=here / "test_ngrams.npz", help="the test set's window index")
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
        f"(an item counts when {ITEM_RATIO:.0%} of its {W}-byte windows appear in one file)",
        file=sys.stderr,
    )
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
