"""`ptb validate task NAME`: the bar a task must meet to join the benchmark, as checks that run.

- data: every file pinned by sha256 at a fixed upstream revision; it resolves and the test set loads
  (samples, unique ids, targets);
- scorer: gold answers score 1 on every sample, wrong answers (another sample's gold answer) score 0;
- models: the base models score low and their instruct twins significantly above chance (needs a GPU
  and the models in the cache, except for locally built models; otherwise skipped, with the reason);
- time: a full evaluation, every generation using its whole token budget, fits the evaluation budget
  on the reference card (estimated from the token budgets and the throughput measured in bench/).
"""

from __future__ import annotations

import math
import re
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.scorer import value_to_float
from inspect_ai.tool import ToolCall
from pydantic import BaseModel

from posttrainbench import models, settings
from posttrainbench.data import TaskData
from posttrainbench.errors import UserError
from posttrainbench.tasks.base import EvalOptions, Task

Status = Literal["pass", "fail", "skip"]
Answer = str | list[ToolCall]  # what Task.gold_answer gives
SHA256 = re.compile(r"[0-9a-f]{64}")
COMMIT = re.compile(r"(?<![0-9a-f])[0-9a-f]{40}(?![0-9a-f])")  # a git commit in a URL: a fixed revision
SIGNIFICANCE = 0.01  # one-sided, for "significantly above chance"
SHOWN = 5  # sample ids named per failing check


class Check(BaseModel):
    name: str
    status: Status
    detail: str
    reasons: list[str] = []


class Validation(BaseModel):
    task: str
    source: str
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)


class Throughput(BaseModel):
    """Decode speed of the evaluation on the reference card: one decoding step of a batch of `batch`
    sequences takes `step_ms(batch)` (a line through two measured batch sizes), for the 1.7B shape;
    larger models scale by their parameter count (decoding reads all weights every step)."""

    card: str
    source: str
    batch_lo: int
    step_ms_lo: float
    batch_hi: int
    step_ms_hi: float
    prefill_tokens_per_s: float
    params_b: float = 1.72

    def step_ms(self, batch: int, params_b: float) -> float:
        slope = (self.step_ms_hi - self.step_ms_lo) / (self.batch_hi - self.batch_lo)
        return (self.step_ms_lo + slope * (batch - self.batch_lo)) * params_b / self.params_b


# bench/measured/gpu_eval-h100.json: the whole evaluation path (inspect, fallback backend with the
# dynamic cache, a Qwen3-1.7B-shape model) on the lent H100 80GB HBM3, 2026-11-26: 15-30 new tok/s at
# batch 1 and 255-459 at batch 32; taken at the slow end (17.9 and 255 tok/s). Conservative: the backend
# has compiled static-cache decoding since (bench/measured/gpu_generate-1.7b-h100.json), and vLLM, the
# GPU default, was not measurable on the lent machine; replace these with its figures once measured.
# Prefill: 2N FLOPs a token at a third of the card's measured 796 TFLOP/s.
REFERENCE = Throughput(
    card="NVIDIA H100 80GB HBM3",
    source="bench/measured/gpu_eval-h100.json (fallback backend, 2026-11-26)",
    batch_lo=1,
    step_ms_lo=1000 / 17.9,
    batch_hi=32,
    step_ms_hi=32 * 1000 / 255.3,
    prefill_tokens_per_s=796e12 / 3 / (2 * 1.72e9),
)
LARGEST_BASE_B = 4.3  # Qwen3-4B-Base and Gemma-3-4B-pt, the largest standard base models


def validate(
    task: Task,
    source: str,
    data_dir: Path | None = None,
    model_names: list[str] | None = None,
    limit: int | None = 100,
    eval_hours: float = 2.0,
    throughput: Throughput = REFERENCE,
    progress: Callable[[str], None] = lambda _: None,
) -> Validation:
    progress("data")
    data_check, data, samples = check_data(task, data_dir)
    checks = [data_check]
    if data is None or not samples:
        reason = "the test set did not load"
        checks += [Check(name=n, status="skip", detail=reason) for n in ("scorer", "models", "time")]
    else:
        progress("scorer")
        checks.append(check_scorer(task, data, samples))
        progress("models")
        checks.append(check_models(task, model_names, limit, data_dir))
        checks.append(check_time(task, samples, eval_hours, throughput))
    return Validation(task=task.info.name, source=source, checks=checks)


def check_data(task: Task, data_dir: Path | None) -> tuple[Check, TaskData | None, list[Sample]]:
    reasons = []
    for f in task.data_files:
        if not SHA256.fullmatch(f.sha256):
            reasons.append(f"{f.path}: the pin {f.sha256!r} is not a sha256 digest")
        if not COMMIT.search(f.url):
            reasons.append(
                f"{f.path}: {f.url} names no fixed revision (a 40-hex commit): a branch or tag can change "
                "under the benchmark"
            )
    try:
        data = task.data(data_dir)
        samples = task.samples(data)
    except UserError as e:
        return (
            Check(name="data", status="fail", detail="the data did not load", reasons=[*reasons, str(e)]),
            None,
            [],
        )
    except Exception as e:  # the task's own loader failed: that is the finding
        reason = f"loading the test set failed: {type(e).__name__}: {e}"
        return (
            Check(name="data", status="fail", detail="the data did not load", reasons=[*reasons, reason]),
            None,
            [],
        )
    if not samples:
        reasons.append("the test set is empty")
    duplicates = sorted(i for i, n in Counter(str(s.id) for s in samples).items() if n > 1)
    if duplicates:
        reasons.append(f"{len(duplicates)} sample ids appear more than once: {_some(duplicates)}")
    if None in {s.id for s in samples}:
        reasons.append("samples without an id (give every sample a stable id)")
    if task.info.default_judge is None:
        untargeted = [str(s.id) for s in samples if not s.target]
        if untargeted:
            reasons.append(f"{len(untargeted)} of {len(samples)} samples have no target: {_some(untargeted)}")
    where = (
        f"{len(task.data_files)} files pinned by sha256 ({data.record.source}: {data.record.location})"
        if task.data_files
        else "no files to fetch: the data ships with the task's code"
    )
    detail = f"{len(samples)} samples; {where}"
    return (
        Check(name="data", status="fail" if reasons else "pass", detail=detail, reasons=reasons),
        data,
        samples,
    )


def check_scorer(task: Task, data: TaskData, samples: list[Sample]) -> Check:
    """Every sample answered with its gold answer must score 1, and with another sample's gold answer 0."""
    if task.info.default_judge is not None:
        return Check(
            name="scorer",
            status="skip",
            detail=f"graded by a judge model ({task.info.default_judge}): gold and wrong answers cost judge "
            "calls; check the grader with `ptb calibrate` and the judge tests instead",
        )
    gold = {str(s.id): task.gold_answer(s) for s in samples}
    if len(gold) != len(samples):
        return Check(
            name="scorer", status="skip", detail="sample ids are not unique: answers cannot be matched"
        )
    ids = list(gold)
    wrong: dict[str, Answer] = {}
    for n, key in enumerate(ids):  # the gold answer of the next sample whose gold answer differs
        later = (gold[ids[(n + k) % len(ids)]] for k in range(1, len(ids)))
        wrong[key] = next((answer for answer in later if answer != gold[key]), "")
    reasons = []
    for label, answers, expected in (("gold", gold, 1.0), ("wrong", wrong, 0.0)):
        try:
            scores = _replay_scores(task, data, answers)
        except Exception as e:  # the task's solver or scorer failed: that is the finding
            reasons.append(f"scoring {label} answers failed: {type(e).__name__}: {e}")
            continue
        off = [key for key in ids if scores.get(key) != expected]
        if off:
            got = sorted({str(scores.get(k)) for k in off})
            reasons.append(
                f"{label} answers: {len(off)} of {len(ids)} samples do not score {expected:g} (got {', '.join(got)}): "
                f"{_some(off)}"
            )
    detail = f"{len(ids)} gold answers score 1 and {len(ids)} wrong answers (another sample's gold) score 0"
    return Check(
        name="scorer", status="fail" if reasons else "pass", detail="" if reasons else detail, reasons=reasons
    )


def _replay_scores(task: Task, data: TaskData, answers: dict[str, Answer]) -> dict[str, float | None]:
    """sample id -> its score (the lowest of the task's scorers) with `answers` as the model's outputs."""
    from posttrainbench.evaluation.replay import replay
    from posttrainbench.evaluation.runner import RunOptions, checked

    inspect_task = task.inspect_task(data, EvalOptions())
    inspect_task.dataset = MemoryDataset(list(inspect_task.dataset), name=f"{task.info.name}-validate")
    outputs = {key: _saved(key, answer).model_output() for key, answer in answers.items()}
    to_float = value_to_float()
    out: dict[str, float | None] = {}
    with tempfile.TemporaryDirectory(prefix="ptb-validate-") as logs:  # the log's samples load lazily
        log = checked(
            replay(inspect_task, outputs, RunOptions(log_dir=Path(logs), display="none")), task.info.name
        )
        for sample in log.samples or []:
            values = [to_float(v) for score in (sample.scores or {}).values() for v in _values(score.value)]
            out[str(sample.id)] = min(values) if values else None
    return out


def _saved(key: str, answer: Answer):
    from posttrainbench.evaluation.replay import SavedOutput, SavedToolCall

    if isinstance(answer, str):
        return SavedOutput(id=key, output=answer)
    return SavedOutput(
        id=key, tool_calls=[SavedToolCall(name=c.function, arguments=c.arguments) for c in answer]
    )


def _values(value: object) -> list:
    return list(value.values()) if isinstance(value, dict) else [value]


def check_models(
    task: Task, model_names: list[str] | None, limit: int | None, data_dir: Path | None
) -> Check:
    """Each base model and its instruct twin, evaluated on the first `limit` samples as the harness does."""
    from posttrainbench.evaluation.backends import cuda_available
    from posttrainbench.evaluation.runner import RunOptions, evaluate

    cards = (
        [models.get(n) for n in model_names]
        if model_names
        else [m for m in models.MODELS.values() if not m.built_locally]
    )
    if not cuda_available() and not all(c.built_locally for c in cards):
        return Check(
            name="models",
            status="skip",
            detail="no CUDA GPU here: run it on a GPU machine with the models in the cache "
            "(`ptb cache pull`), or name locally built models with --models",
        )
    hub = settings.model_cache()
    pairs, missing = [], []
    for card in cards:
        try:
            base = models.snapshot(card, hub)
        except UserError:
            missing.append(card.hub_id)
            continue
        twin = models.twin_snapshot(card, hub)
        if twin is None:
            missing.append(card.instruct_twin or f"an instruct twin of {card.name}")
            continue
        pairs.append((card, base, twin))
    if missing:
        return Check(
            name="models",
            status="skip",
            detail=f"not in the model cache: {', '.join(missing)} (`ptb cache pull --models ...`)",
        )
    reasons, shown = [], []
    with tempfile.TemporaryDirectory(prefix="ptb-validate-") as logs:
        opts = RunOptions(limit=limit, data_dir=data_dir, log_dir=Path(logs), display="none")
        for card, base, twin in pairs:
            try:
                (b,) = evaluate([task.info.name], base, opts)
                (i,) = evaluate([task.info.name], twin, opts)
            except Exception as e:  # a model that cannot be evaluated (or a judge that fails) is a finding
                reasons.append(f"evaluating {card.name} or its twin failed: {type(e).__name__}: {e}")
                continue
            shown.append(f"{card.name} {b.score:.3f} -> instruct {i.score:.3f} (n={i.n})")
            p = _p_above(i.score, i.n, task.chance)
            if p >= SIGNIFICANCE:
                reasons.append(
                    f"{card.instruct_twin} scores {i.score:.3f} on {i.n} samples: not significantly above chance "
                    f"({task.chance:g}; p={p:.3f})"
                )
            if b.score >= i.score:
                reasons.append(
                    f"{card.name} scores {b.score:.3f}, not below its instruct twin ({i.score:.3f})"
                )
    return Check(
        name="models", status="fail" if reasons else "pass", detail="; ".join(shown), reasons=reasons
    )


def _p_above(score: float, n: int, chance: float) -> float:
    """One-sided binomial p-value of `score` over `n` samples against the chance rate."""
    if n == 0:
        return 1.0
    k = round(score * n)
    if chance <= 0:
        return 0.0 if k > 0 else 1.0
    return sum(math.comb(n, j) * chance**j * (1 - chance) ** (n - j) for j in range(k, n + 1))


def check_time(task: Task, samples: list[Sample], eval_hours: float, throughput: Throughput) -> Check:
    """Worst case: every generation of the standard (one-epoch) evaluation uses the task's whole token
    budget, in batches of the task's max_connections, on the largest standard base model; prompts are
    counted at 4 characters a token."""
    info = task.info
    batch = max(1, min(len(samples), info.default_max_connections))
    waves = math.ceil(len(samples) / batch)
    decode_s = waves * info.default_max_tokens * throughput.step_ms(batch, LARGEST_BASE_B) / 1000
    prompt_tokens = sum(len(_text(s)) for s in samples) / 4
    prefill_s = prompt_tokens / (throughput.prefill_tokens_per_s * throughput.params_b / LARGEST_BASE_B)
    seconds = decode_s + prefill_s
    detail = (
        f"worst case {seconds / 3600:.2f} h of {eval_hours:g} h on the {throughput.card}: {len(samples)} samples x "
        f"{info.default_max_tokens} new tokens in batches of {batch}, a {LARGEST_BASE_B}B model "
        f"(throughput from {throughput.source})"
    )
    if seconds <= eval_hours * 3600:
        return Check(name="time", status="pass", detail=detail)
    return Check(
        name="time",
        status="fail",
        detail=detail,
        reasons=[
            f"the full evaluation may take {seconds / 3600:.2f} h, over the {eval_hours:g} h budget: lower "
            "default_max_tokens, raise default_max_connections, or use fewer samples"
        ],
    )


def _text(sample: Sample) -> str:
    if isinstance(sample.input, str):
        return sample.input
    return "\n".join(m.text for m in sample.input)


def _some(ids: list[str]) -> str:
    return ", ".join(ids[:SHOWN]) + (f" and {len(ids) - SHOWN} more" if len(ids) > SHOWN else "")
