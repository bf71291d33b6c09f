"""`metrics.json`: what one evaluation measured and under which settings."""

from __future__ import annotations

from pydantic import BaseModel


class Decoding(BaseModel):
    temperature: float = 0.0
    do_sample: bool = False
    max_tokens: int


class EvalMetrics(BaseModel):
    task: str
    score: float
    stderr: float | None
    n: int
    metrics: dict[str, float]
    backend: str
    decoding: Decoding
    template: str
    model_path: str
    generation_config_ignored: bool
    judge_model: str | None = None
    epochs: int = 1
    seconds: float
    log_file: str | None = None
