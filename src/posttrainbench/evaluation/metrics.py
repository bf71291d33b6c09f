"""`metrics.json`: what one evaluation measured, on which data, and under which settings."""

from __future__ import annotations

from pydantic import BaseModel

from posttrainbench.data import DataRecord


class Decoding(BaseModel):
    """Decoding is always set explicitly; nothing in the submission can change it."""

    temperature: float = 0.0
    do_sample: bool = False
    max_tokens: int
    seed: int = 0


class Sampling(BaseModel):
    temperature: float
    top_p: float
    top_k: int


class FewShotInfo(BaseModel):
    """How a few-shot evaluation (`--fewshot`, the base-model protocol) was made: the task's exemplars
    (`tasks/<task>/fewshot.json`) in front of each sample, the plain template (`template`) and
    sampling. `decoding` is what was applied; `not_applied` names each sampling setting the backend
    could not apply, and why."""

    exemplars: int  # worked examples in front of each sample
    exemplar_source: str
    sampling: Sampling
    not_applied: dict[str, str] = {}


class GenerationConfigInfo(BaseModel):
    """A submission's generation_config.json is recorded, never applied."""

    present: bool
    sha256: str | None = None
    applied: bool = False


class EvalMetrics(BaseModel):
    task: str
    score: float
    stderr: float | None
    n: int
    metrics: dict[str, float]
    backend: str  # hf, vllm, openai; "replay" for `ptb score` of saved outputs
    decoding: Decoding | None
    fewshot: FewShotInfo | None = None  # None: the standard protocol (greedy, the family's chat template)
    template: str | None
    model_path: str  # the model directory (or, for replay, the outputs file)
    generation_config: GenerationConfigInfo | None
    data: DataRecord
    judge_model: str | None = None
    judge_calls: int | None = None
    judge_failures: int | None = None
    epochs: int = 1
    epoch_scores: list[float] = []
    seconds: float
    log_files: list[str] = []
