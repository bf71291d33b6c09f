"""Deterministic data for the `arith` toy task: addition and subtraction of two-digit numbers.

The split is a pure function of a fixed seed, so every machine sees the same test set and the
same (disjoint) training set without downloading anything.
"""

from __future__ import annotations

import random
from functools import cache

from pydantic import BaseModel

SEED = 20261126
TEST_SIZE = 200
TRAIN_SIZE = 10_000  # of the ~12,000 distinct problems


class ArithItem(BaseModel):
    """One problem: `a op b`, its answer, and a stable id."""

    id: str
    a: int
    b: int
    op: str
    answer: int

    @property
    def expression(self) -> str:
        return f"{self.a} {self.op} {self.b}"

    @property
    def question(self) -> str:
        return f"What is {self.expression}?"


def _draw(rng: random.Random) -> tuple[int, int, str]:
    a, b = rng.randrange(10, 100), rng.randrange(10, 100)
    op = rng.choice("+-")
    if op == "-" and b > a:
        a, b = b, a
    return a, b, op


@cache
def splits() -> tuple[tuple[ArithItem, ...], tuple[ArithItem, ...]]:
    """(train, test): disjoint sets of unique problems."""
    rng = random.Random(SEED)
    seen: set[tuple[int, int, str]] = set()
    items: list[ArithItem] = []
    while len(items) < TEST_SIZE + TRAIN_SIZE:
        a, b, op = _draw(rng)
        if (a, b, op) in seen:
            continue
        seen.add((a, b, op))
        answer = a + b if op == "+" else a - b
        items.append(ArithItem(id="", a=a, b=b, op=op, answer=answer))
    test = tuple(it.model_copy(update={"id": f"test-{i:03d}"}) for i, it in enumerate(items[:TEST_SIZE]))
    train = tuple(it.model_copy(update={"id": f"train-{i:05d}"}) for i, it in enumerate(items[TEST_SIZE:]))
    return train, test


def train_split() -> tuple[ArithItem, ...]:
    return splits()[0]


def test_split() -> tuple[ArithItem, ...]:
    return splits()[1]
