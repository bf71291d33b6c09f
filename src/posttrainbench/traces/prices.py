"""A versioned table of list prices, for CLIs that do not report their own cost.

USD per million tokens at the providers' standard tier (prompts up to 200k tokens where the price
depends on length). `cached` is the price of a cache read, `cache_write` of a cache write (Anthropic).
Bump VERSION when a price changes; summaries record the version they used.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

from posttrainbench.traces.schema import Usage

VERSION = "2026-11-27"


class Price(BaseModel):
    input: float
    output: float
    cached: float
    cache_write: float = 0.0


_ANTHROPIC_OPUS_45 = Price(input=5, output=25, cached=0.5, cache_write=6.25)
_ANTHROPIC_SONNET = Price(input=3, output=15, cached=0.3, cache_write=3.75)
_OPENAI_GPT5 = Price(input=1.25, output=10, cached=0.125)

PRICES: dict[str, Price] = {
    "claude-opus-4-6": _ANTHROPIC_OPUS_45,
    "claude-opus-4-5": _ANTHROPIC_OPUS_45,
    "claude-opus-4-1": Price(input=15, output=75, cached=1.5, cache_write=18.75),
    "claude-sonnet-4-6": _ANTHROPIC_SONNET,
    "claude-sonnet-4-5": _ANTHROPIC_SONNET,
    "claude-haiku-4-5": Price(input=1, output=5, cached=0.1, cache_write=1.25),
    "gpt-5": _OPENAI_GPT5,
    "gpt-5-codex": _OPENAI_GPT5,
    "gpt-5.1": _OPENAI_GPT5,
    "gpt-5.1-codex": _OPENAI_GPT5,
    "gpt-5.1-codex-max": _OPENAI_GPT5,
    "gpt-5-mini": Price(input=0.25, output=2, cached=0.025),
    "gemini-2.5-pro": Price(input=1.25, output=10, cached=0.125),
    "gemini-2.5-flash": Price(input=0.3, output=2.5, cached=0.03),
    "gemini-3-pro-preview": Price(input=2, output=12, cached=0.2),
}


def normalize(model: str) -> str:
    """`anthropic/claude-opus-4-5`, `models/gemini-3-pro-preview`, `claude-opus-4-6[1m]`,
    `claude-sonnet-4-5-20250929` -> the table's name."""
    name = model.rsplit("/", 1)[-1].lower()
    name = re.sub(r"\[.*?\]$", "", name)
    return re.sub(r"-\d{8}$", "", name)


def price(model: str) -> Price | None:
    return PRICES.get(normalize(model))


def cost(model: str, usage: Usage) -> float | None:
    p = price(model)
    if p is None:
        return None
    dollars = (
        usage.input * p.input
        + usage.output * p.output
        + usage.cached * p.cached
        + usage.cache_write * p.cache_write
    )
    return round(dollars / 1e6, 6)
