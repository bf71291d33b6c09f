"""Arena-Hard v2.0 creative-writing judging: pairwise comparison against a fixed baseline.

Per question the judge plays two games: game 1 shows the baseline as Assistant A and the candidate as B,
game 2 swaps them. A verdict label maps to the candidate's win values (a decisive `>>` verdict counts as
three entries, a tie as 0.5), and the score is the mean over all entries of all games, as in the original
PostTrainBench. Unlike the original, a game whose judge call fails or whose verdict cannot be parsed is
not dropped silently: it is left unscored and counted in `judge_failures` (the other game still counts).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
from inspect_ai.model import ChatMessageSystem, ChatMessageUser, GenerateConfig, Model, get_model
from inspect_ai.scorer import Metric, SampleScore, Score, Scorer, Target, metric, scorer
from inspect_ai.solver import TaskState
from inspect_ai.util import collect
from pydantic import BaseModel

from posttrainbench.evaluation.postprocess import clean_answer

# The judge system prompt and prompt template below are verbatim from Arena-Hard-Auto
# (github.com/lmarena/arena-hard-auto: utils/judge_utils.py, JUDGE_SETTINGS["creative_writing"]; and
# config/arena-hard-v2.0.yaml, prompt_template). Copyright LMSYS / LMArena, Apache License 2.0.
SYSTEM_PROMPT = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI "
    "assistants to the user prompt displayed below. You will be given assistant A's answer and assistant B's "
    "answer. Your job is to evaluate which assistant's answer is better.\n\n"
    "When evaluating the assistants' answers, compare both assistants' answers. You must identify and correct "
    "any mistakes or inaccurate information.\n\n"
    "Then consider if the assistant's answers are helpful, relevant, and concise. Helpful means the answer "
    "correctly responds to the prompt or follows the instructions. Note when user prompt has any ambiguity or "
    "more than one interpretation, it is more helpful and appropriate to ask for clarifications or more "
    "information from the user than providing an answer based on assumptions. Relevant means all parts of the "
    "response closely connect or are appropriate to what is being asked. Concise means the response is clear "
    "and not verbose or excessive.\n\n"
    "Then consider the creativity and novelty of the assistant's answers when needed. Finally, identify any "
    "missing important information in the assistants' answers that would be beneficial to include when "
    "responding to the user prompt.\n\n"
    "After providing your explanation, you must output only one of the following choices as your final "
    "verdict with a label:\n\n"
    "1. Assistant A is significantly better: [[A>>B]]\n"
    "2. Assistant A is slightly better: [[A>B]]\n"
    "3. Tie, relatively the same: [[A=B]]\n"
    "4. Assistant B is slightly better: [[B>A]]\n"
    "5. Assistant B is significantly better: [[B>>A]]\n\n"
    'Example output: "My final verdict is tie: [[A=B]]".'
)
PROMPT_TEMPLATE = (
    "<|User Prompt|>\n{QUESTION}\n\n"
    "<|The Start of Assistant A's Answer|>\n{ANSWER_A}\n<|The End of Assistant A's Answer|>\n\n"
    "<|The Start of Assistant B's Answer|>\n{ANSWER_B}\n<|The End of Assistant B's Answer|>"
)
# Tried in order on the upper-cased judgment; the last match of the first pattern that matches wins.
VERDICT_PATTERNS = (re.compile(r"\[\[([AB<>=]+)\]\]"), re.compile(r"\[([AB<>=]+)\]"))
DECISIVE_WEIGHT = 3
# Assistant A's win value per verdict label (the original's table, `>>` repeated DECISIVE_WEIGHT times).
A_WIN_VALUES: dict[str, tuple[float, ...]] = {
    "A>B": (1.0,),
    "A>>B": (1.0,) * DECISIVE_WEIGHT,
    "A=B": (0.5,),
    "A<<B": (0.0,) * DECISIVE_WEIGHT,
    "A<B": (0.0,),
    "B>A": (0.0,),
    "B>>A": (0.0,) * DECISIVE_WEIGHT,
    "B=A": (0.5,),
    "B<<A": (1.0,) * DECISIVE_WEIGHT,
    "B<A": (1.0,),
}
# The original's judge request: gpt-5-mini, reasoning effort medium, 49152 completion tokens.
JUDGE_CONFIG = GenerateConfig(max_tokens=49152, reasoning_effort="medium")


class Game(BaseModel):
    """One judged comparison. `entries` are the candidate's win values; empty when `error` is set."""

    candidate_is_a: bool
    verdict: str | None = None
    entries: list[float] = []
    error: str | None = None
    judgment: str | None = None


def parse_verdict(judgment: str) -> str | None:
    """The verdict label in a judgment (upper-cased), or None when no pattern matches."""
    upper = judgment.upper()
    for pattern in VERDICT_PATTERNS:
        matches = pattern.findall(upper)
        if matches:
            return matches[-1]
    return None


def candidate_entries(verdict: str, candidate_is_a: bool) -> list[float] | None:
    """The candidate's win values for a verdict label; None for a label outside the table."""
    a_wins = A_WIN_VALUES.get(verdict)
    if a_wins is None:
        return None
    return [v if candidate_is_a else 1.0 - v for v in a_wins]


def judge_messages(question: str, answer_a: str, answer_b: str) -> list[ChatMessageSystem | ChatMessageUser]:
    user = PROMPT_TEMPLATE.format(QUESTION=question, ANSWER_A=answer_a, ANSWER_B=answer_b)
    return [ChatMessageSystem(content=SYSTEM_PROMPT), ChatMessageUser(content=user)]


async def play(judge: Model, question: str, baseline: str, candidate: str, candidate_is_a: bool) -> Game:
    """Judge one game; a failed call or an unparseable verdict yields a Game with `error` set."""
    a, b = (candidate, baseline) if candidate_is_a else (baseline, candidate)
    try:
        output = await judge.generate(judge_messages(question, a, b), config=JUDGE_CONFIG)
    except Exception as e:  # any failure of the judge call, after inspect's own retries
        return Game(candidate_is_a=candidate_is_a, error=f"judge call failed: {type(e).__name__}: {e}")
    judgment = output.completion
    if output.error:
        return Game(candidate_is_a=candidate_is_a, error=f"judge error: {output.error}", judgment=judgment)
    verdict = parse_verdict(judgment)
    entries = candidate_entries(verdict, candidate_is_a) if verdict else None
    if entries is None:
        return Game(
            candidate_is_a=candidate_is_a,
            verdict=verdict,
            error=f"unparseable verdict: {verdict!r}" if verdict else "no verdict label",
            judgment=judgment,
        )
    return Game(candidate_is_a=candidate_is_a, verdict=verdict, entries=entries, judgment=judgment)


def _games(score: SampleScore) -> list[Game]:
    return [Game.model_validate(g) for g in (score.score.metadata or {}).get("games", [])]


@metric
def pairwise_winrate() -> Metric:
    """accuracy = mean candidate win value over all entries of all scored games; stderr = their
    standard error (std with ddof=1 over sqrt(n)); plus judge_calls and judge_failures (games)."""

    def compute(scores: list[SampleScore]) -> dict[str, float]:
        games = [g for s in scores for g in _games(s)]
        entries = np.array([e for g in games for e in g.entries], dtype=float)
        n = len(entries)
        return {
            "accuracy": float(entries.mean()) if n else 0.0,
            "stderr": float(entries.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0,
            "judge_calls": float(len(games)),
            "judge_failures": float(sum(g.error is not None for g in games)),
        }

    return compute


@scorer(metrics=[pairwise_winrate()])
def pairwise_judge(judge: str | Model) -> Scorer:
    """Two judged games per question against `metadata["baseline_answer"]`; the candidate is the
    cleaned completion (think block removed, repetition limited)."""

    async def score(state: TaskState, target: Target) -> Score:
        model = get_model(judge)
        candidate = clean_answer(state.output.completion)
        baseline = state.metadata["baseline_answer"]
        question = state.input_text
        games = await collect(
            play(model, question, baseline, candidate, candidate_is_a=False),
            play(model, question, baseline, candidate, candidate_is_a=True),
        )
        entries = [e for g in games for e in g.entries]
        failures = sum(g.error is not None for g in games)
        value: dict[str, Any] = {
            "win_rate": sum(entries) / len(entries) if entries else math.nan,
            "judge_failures": failures,
        }
        return Score(
            value=value,
            answer=candidate,
            explanation=" | ".join(f"game {i + 1}: {g.verdict or g.error}" for i, g in enumerate(games)),
            metadata={"games": [g.model_dump() for g in games]},
        )

    return score
