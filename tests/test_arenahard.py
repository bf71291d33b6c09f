"""Arena-Hard v2.0 (writing): the real data files, verdict parsing, and the pairwise judge end to end
through inspect with a scripted mockllm judge (exact scores, `>>` weight, ties, judge failures)."""

from __future__ import annotations

import math
import random
import re

import inspect_ai
import numpy as np
import pytest
from inspect_ai.model import ModelOutput, ModelUsage, get_model

from conftest import SHARED_DATA
from posttrainbench.tasks.arenahardwriting import judge
from posttrainbench.tasks.arenahardwriting.task import (
    ArenaHardWritingTask,
    load_baseline,
    load_questions,
)
from posttrainbench.tasks.base import EvalOptions

TASK = ArenaHardWritingTask()


@pytest.fixture(scope="module")
def data():
    return TASK.data(SHARED_DATA)


def test_data_files_all_records(data):
    questions = load_questions(data)
    baseline = load_baseline(data)
    assert len(questions) == 250 and len(baseline) == 250
    assert len({q.uid for q in questions}) == 250
    assert {q.uid for q in questions} == set(baseline)
    assert {q.category for q in questions} == {"creative_writing"}
    assert all(answer.strip() for answer in baseline.values())
    assert len(data.record.files) == 2 and data.record.source == "local"


def test_samples_are_the_originals_shuffled_order(data):
    samples = TASK.samples(data)
    file_order = [q.uid for q in load_questions(data)]
    random.Random(42).shuffle(file_order)
    assert [s.id for s in samples] == file_order
    # Anchors: the first questions the original's `--limit N` evaluates.
    assert [s.id for s in samples[:3]] == ["934879a5b80a421b", "86e476fd58be4568", "042351d2911d453b"]
    baseline = load_baseline(data)
    assert all(s.metadata["baseline_answer"] == baseline[s.id] for s in samples)


def test_task_info():
    info = TASK.info
    assert (info.default_limit, info.default_max_tokens, info.retry_max_tokens) == (32, 16384, (12288, 8192))
    assert info.token_flag == "--max-new-tokens" and info.default_judge == "openai/gpt-5-mini"
    assert TASK.benchmark == "Arena-Hard-v2.0 (Writing)"
    assert judge.JUDGE_CONFIG.reasoning_effort == "medium"


@pytest.mark.parametrize(
    ("judgment", "verdict"),
    [
        ("Long reasoning... My final verdict is tie: [[A=B]]", "A=B"),
        ("first [[A>B]] then, on reflection, [[B>>A]]", "B>>A"),  # the last label counts
        ("my final verdict: [[a>>b]]", "A>>B"),  # case-insensitive
        ("Verdict: [B>A]", "B>A"),  # single brackets as a fallback
        ("[B>A] but finally [[A=B]]", "A=B"),  # double brackets take precedence
        ("I cannot decide.", None),
        ("", None),
    ],
)
def test_parse_verdict(judgment, verdict):
    assert judge.parse_verdict(judgment) == verdict


def test_candidate_entries():
    # Game 1: the candidate is B, so A's win values are flipped.
    assert judge.candidate_entries("A>>B", candidate_is_a=False) == [0.0, 0.0, 0.0]
    assert judge.candidate_entries("B>>A", candidate_is_a=False) == [1.0, 1.0, 1.0]
    assert judge.candidate_entries("A>B", candidate_is_a=False) == [0.0]
    assert judge.candidate_entries("A=B", candidate_is_a=False) == [0.5]
    # Game 2: the candidate is A.
    assert judge.candidate_entries("A>>B", candidate_is_a=True) == [1.0, 1.0, 1.0]
    assert judge.candidate_entries("B>A", candidate_is_a=True) == [0.0]
    assert judge.candidate_entries("B<<A", candidate_is_a=True) == [1.0, 1.0, 1.0]
    assert judge.candidate_entries("AB", candidate_is_a=True) is None


def _output(text: str) -> ModelOutput:
    out = ModelOutput.from_content(model="mockllm/model", content=text)
    out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
    return out


# Per question k (in task order): the candidate's raw answer and the judge's reply in game 1
# (baseline = A, candidate = B) and game 2 (candidate = A). RAISE: the judge call fails.
RAISE = object()
LOOP_LINE = "Ode to the sea, again."
SCRIPT = [
    # entries [1, 1, 1] + [1]
    ("CAND-0 a poem\n" + f"{LOOP_LINE}\n" * 31, "[[B>>A]]", "[[A>B]]"),
    # entries [0.5] + [0]
    ("CAND-1 a story", "My final verdict is tie: [[A=B]]", "[[B>A]]"),
    # entries [0, 0, 0] + [0.5]; the think block must not reach the judge
    ("<think>SECRET-REASONING</think>\n\nCAND-2 a song", "verdict: [[a>>b]]", "[A=B]"),
    # both games fail: no verdict, and a judge call that raises
    ("CAND-3 a limerick", "I cannot decide between them.", RAISE),
    # entries [1]; game 2's label is not a verdict
    ("CAND-4 a haiku", "[[B>A]]", "[[AB]]"),
]
EXPECTED_ENTRIES = [1, 1, 1, 1, 0.5, 0, 0, 0, 0, 0.5, 1]


class ScriptedJudge:
    """Replies by (question, game), read from the prompt; records every prompt it sees."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def __call__(self, input, tools, tool_choice, config):
        assert [m.role for m in input] == ["system", "user"]
        assert input[0].text == judge.SYSTEM_PROMPT
        prompt = input[1].text
        self.prompts.append(prompt)
        k = int(re.search(r"CAND-(\d)", prompt).group(1))
        b_start = prompt.index("<|The Start of Assistant B's Answer|>")
        candidate_is_a = prompt.index(f"CAND-{k}") < b_start
        reply = SCRIPT[k][2 if candidate_is_a else 1]
        if reply is RAISE:
            raise RuntimeError("judge API unavailable")
        return _output(reply)


def _run(data, judge_fn, limit: int, tmp_path):
    samples = TASK.samples(data)[:limit]
    answers = {s.input: SCRIPT[k][0] for k, s in enumerate(samples)}

    def candidate(input, tools, tool_choice, config):
        return _output(answers[input[-1].text])

    log = inspect_ai.eval(
        TASK.inspect_task(data, EvalOptions(judge=get_model("mockllm/model", custom_outputs=judge_fn))),
        model=get_model("mockllm/model", custom_outputs=candidate),
        limit=limit,
        display="none",
        log_dir=str(tmp_path),
    )[0]
    assert log.status == "success", log.error
    return log


def test_pairwise_scores_exactly(data, tmp_path):
    scripted = ScriptedJudge()
    log = _run(data, scripted, len(SCRIPT), tmp_path)
    metrics = {k: v.value for k, v in log.results.scores[0].metrics.items()}
    n = len(EXPECTED_ENTRIES)
    assert metrics["accuracy"] == pytest.approx(6 / 11)
    assert metrics["accuracy"] == pytest.approx(np.mean(EXPECTED_ENTRIES))
    assert metrics["stderr"] == pytest.approx(np.std(EXPECTED_ENTRIES, ddof=1) / math.sqrt(n))
    assert metrics["judge_calls"] == 10
    assert metrics["judge_failures"] == 3

    # Every game reached the judge (the raising one once: mockllm errors are not retried).
    assert len(scripted.prompts) == 10
    assert not any("SECRET-REASONING" in p or "<think>" in p for p in scripted.prompts)
    cand0 = [p for p in scripted.prompts if "CAND-0" in p]
    assert all(p.count(LOOP_LINE) == 5 for p in cand0)  # 31 copies cut to 5

    by_id = {s.id: s for s in log.samples}
    order = [s.id for s in TASK.samples(data)[: len(SCRIPT)]]
    values = [by_id[i].scores["pairwise_judge"].value for i in order]
    assert [v["judge_failures"] for v in values] == [0, 0, 0, 2, 1]
    assert values[0]["win_rate"] == 1.0 and values[4]["win_rate"] == 1.0
    assert math.isnan(values[3]["win_rate"])
    games = by_id[order[3]].scores["pairwise_judge"].metadata["games"]
    assert games[0]["error"] == "no verdict label"
    assert games[1]["error"].startswith("judge call failed: RuntimeError")
    assert by_id[order[2]].scores["pairwise_judge"].answer == "CAND-2 a song"


def test_all_judge_calls_failing_is_reported_not_scored(data, tmp_path):
    def down(input, tools, tool_choice, config):
        raise RuntimeError("judge API unavailable")

    log = _run(data, down, 3, tmp_path)
    metrics = {k: v.value for k, v in log.results.scores[0].metrics.items()}
    assert metrics["judge_calls"] == 6 and metrics["judge_failures"] == 6
    assert metrics["accuracy"] == 0.0 and metrics["stderr"] == 0.0


def test_judge_prompt_is_the_arena_hard_template():
    messages = judge.judge_messages("Q?", "first answer", "second answer")
    assert messages[1].text == (
        "<|User Prompt|>\nQ?\n\n<|The Start of Assistant A's Answer|>\nfirst answer\n"
        "<|The End of Assistant A's Answer|>\n\n<|The Start of Assistant B's Answer|>\nsecond answer\n"
        "<|The End of Assistant B's Answer|>"
    )
