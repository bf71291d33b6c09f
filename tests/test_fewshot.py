"""The few-shot protocol for base models (`ptb eval --fewshot`, the `few-shot` baseline agent): every
task's exemplars load and never come from its test split, the exemplars reach the model in the plain
template, metrics.json says how the score was made, and the agent's final evaluation is few-shot while
its baseline stays zero-shot. GPQA and HealthBench content is never printed."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import inspect_ai
import numpy as np
import pytest
from inspect_ai.log import read_eval_log
from inspect_ai.model import ModelOutput, ModelUsage, get_model
from inspect_evals.constants import DEFAULT_FEWSHOT_SEED
from inspect_evals.gsm8k.gsm8k import record_to_sample, sample_to_fewshot
from inspect_evals.utils.aime_common import USER_PROMPT_TEMPLATE
from transformers import AutoTokenizer

from conftest import SHARED_DATA, ptb, record, run_ptb
from posttrainbench import models, settings, tasks
from posttrainbench.agents import registry
from posttrainbench.data import read_jsonl
from posttrainbench.evaluation.runner import FEWSHOT_SAMPLING, decoding_settings
from posttrainbench.lifecycle.evaluate import baseline_dir
from posttrainbench.specs import RunRecord
from posttrainbench.tasks.arith import data as arith_data
from posttrainbench.tasks.base import EvalOptions

EXEMPLARS = {
    "arith": 5,
    "aime2025": 3,
    "arenahardwriting": 3,
    "bfcl": 0,
    "gpqamain": 3,
    "gsm8k": 10,
    "healthbench": 3,
    "humaneval": 0,
}
PLAIN = (models.TEMPLATES_DIR / "base.jinja").read_text()


def test_every_task_has_exemplars_in_its_answer_format():
    assert set(EXEMPLARS) == set(tasks.names())
    for name, count in EXEMPLARS.items():
        fewshot = tasks.get(name).fewshot()
        assert len(fewshot.exemplars) == count and fewshot.source, name
        assert all(e.prompt.strip() and e.response.strip() for e in fewshot.exemplars), name
    aime = tasks.get("aime2025").fewshot().exemplars
    for e in aime:
        assert e.prompt.startswith(USER_PROMPT_TEMPLATE.split("{prompt}")[0])
        assert re.fullmatch(r"\d{1,3}", e.response.splitlines()[-1].removeprefix("ANSWER: "))
    gpqa = tasks.get("gpqamain").fewshot().exemplars
    assert [e.response.splitlines()[-1] for e in gpqa] == ["ANSWER: C", "ANSWER: A", "ANSWER: D"]
    assert all("\nA) " in e.prompt and "\nD) " in e.prompt for e in gpqa)


def test_arith_exemplars_are_the_seeded_draw_from_the_training_split():
    fewshot = tasks.get("arith").fewshot()
    drawn = random.Random(0).sample(arith_data.train_split(), 5)
    assert [(e.prompt, e.response) for e in fewshot.exemplars] == [
        (it.question, str(it.answer)) for it in drawn
    ]
    assert not {e.prompt for e in fewshot.exemplars} & {it.question for it in arith_data.test_split()}


@pytest.fixture
def shared_data(monkeypatch):
    if not SHARED_DATA.is_dir():
        pytest.skip(f"no benchmark data at {SHARED_DATA}")
    monkeypatch.setenv("PTB_DATA_DIR", str(SHARED_DATA))


def test_gsm8k_exemplars_are_inspect_evals_ten_from_the_train_split(shared_data):
    """fewshot.json holds the ten train problems inspect_evals' loader picks, in its format: the prompt of
    every GSM8K evaluation shows them, byte for byte as when they were drawn at evaluation time."""
    train = read_jsonl(SHARED_DATA / "gsm8k" / "train.jsonl")
    order = np.random.default_rng(DEFAULT_FEWSHOT_SEED).permutation(len(train))
    expected = "\n\n".join(sample_to_fewshot(record_to_sample(train[i])) for i in order[:10])
    fewshot = tasks.get("gsm8k").fewshot()
    assert fewshot.text() == expected
    test_questions = {r["question"] for r in read_jsonl(SHARED_DATA / "gsm8k" / "test.jsonl")}
    assert not {e.prompt for e in fewshot.exemplars} & test_questions


def test_aime_exemplars_share_no_problem_or_answer_with_aime_2025(shared_data):
    test = read_jsonl(SHARED_DATA / "aime2025" / "test.jsonl")
    exemplars = tasks.get("aime2025").fewshot().exemplars
    answers = {e.response.splitlines()[-1].removeprefix("ANSWER: ") for e in exemplars}
    assert not answers & {r["answer"] for r in test}
    assert not any(r["problem"] in e.prompt for r in test for e in exemplars)


def _first_input(task: inspect_ai.Task, log_dir: Path) -> list[tuple[str, str]]:
    """(role, text) of each message the model is sent for the first sample."""
    seen = []

    def answer(input, tools, tool_choice, config):
        seen.append(input)
        out = ModelOutput.from_content("mock", "ANSWER: 0")
        out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return out

    model = get_model("mockllm/model", custom_outputs=answer)
    log = inspect_ai.eval(task, model=model, limit=1, display="none", log_dir=str(log_dir))[0]
    assert log.status == "success"
    return [(m.role, m.text) for m in seen[0]]


def test_gsm8k_few_shot_samples_show_the_ten_exemplars_once(shared_data, tmp_path):
    """GSM8K is 10-shot by protocol: the few-shot task sends exactly what the standard one does."""
    task = tasks.get("gsm8k")
    data = task.data()
    fewshot = _first_input(task.fewshot_task(data, EvalOptions()), tmp_path)
    assert fewshot == _first_input(task.inspect_task(data, EvalOptions()), tmp_path)
    [(role, system), (_, user)] = fewshot
    assert role == "system" and system == task.fewshot().text() and system.count("ANSWER: ") == 10
    assert user.startswith("Solve the following math problem step by step.")


def test_decoding_settings_per_backend():
    s = FEWSHOT_SAMPLING
    assert (s.temperature, s.top_p, s.top_k) == (0.6, 0.95, 20)
    assert decoding_settings("vllm", False) == ({"temperature": 0.0}, {})
    assert decoding_settings("hf", False) == ({"temperature": None}, {})
    assert decoding_settings("vllm", True) == (
        {"temperature": 0.6, "top_p": 0.95, "extra_body": {"top_k": 20}},
        {},
    )
    config, not_applied = decoding_settings("openai", True)
    assert config == {"temperature": 0.6, "top_p": 0.95} and list(not_applied) == ["top_k"]
    assert decoding_settings("hf", True) == ({"temperature": 0.6, "top_p": 0.95, "top_k": 20}, {})


@pytest.fixture(scope="module")
def tokenizer(ptb_home):
    return AutoTokenizer.from_pretrained(models.snapshot(models.get("ptb-tiny"), settings.model_cache()))


def test_plain_template_has_no_chat_format(tokenizer):
    tool = {"name": "get_weather", "description": "Weather.", "parameters": {"type": "object"}}
    messages = [
        {"role": "system", "content": "Q: 1 + 1?\n\nA: 2"},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
        },
        {"role": "tool", "content": "sunny"},
    ]
    text = tokenizer.apply_chat_template(
        messages, chat_template=PLAIN, tools=[tool], tokenize=False, add_generation_prompt=True
    )
    tools_block = (
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
        + json.dumps({"type": "function", "function": tool})
        + "\n</tools>\n\nFor each function call, return a json object with function name and arguments "
        'within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": '
        "<args-json-object>}\n</tool_call>"
    )
    assert text == (
        f"{tools_block}\n\nQ: 1 + 1?\n\nA: 2\n\nWeather in Paris?\n\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n\n'
        "<tool_response>\nsunny\n</tool_response>\n\n"
    )


def test_eval_fewshot_records_settings_and_sends_exemplars_in_the_plain_template(tmp_path, tokenizer):
    out = tmp_path / "eval"
    ptb(
        "eval", "ptb-tiny", "--tasks", "arith", "--limit", "3", "--fewshot", "--backend", "hf",
        "--out", str(out), check=True,
    )  # fmt: skip
    m = json.loads((out / "arith" / "metrics.json").read_text())
    fewshot = tasks.get("arith").fewshot()
    assert m["n"] == 3 and m["template"] == "base.jinja"
    assert m["fewshot"]["exemplars"] == 5 and m["fewshot"]["exemplar_source"] == fewshot.source
    assert m["fewshot"]["sampling"] == {"temperature": 0.6, "top_p": 0.95, "top_k": 20}
    # The hf backend samples under the few-shot protocol (set up with do_sample=True).
    assert m["fewshot"]["not_applied"] == {}
    assert m["decoding"] == {"temperature": 0.6, "do_sample": True, "max_tokens": 16, "seed": 0}

    log = read_eval_log(m["log_files"][0], resolve_attachments=True)
    assert log.samples is not None
    sample = log.samples[0]
    [call] = [e for e in sample.events if e.event == "model"]
    assert [(msg.role, msg.text) for msg in call.input] == [
        ("system", fewshot.text()),
        ("user", sample.input),
    ]
    prompt = tokenizer.apply_chat_template(
        [msg.model_dump(exclude_none=True) for msg in call.input],
        chat_template=PLAIN,
        tokenize=False,
        add_generation_prompt=True,
    )
    assert prompt == f"{fewshot.text()}\n\n{sample.input}\n\n"
    assert prompt.startswith("What is 46 + 27?\n\n73\n\n") and "<|im_start|>" not in prompt


def test_few_shot_agent_evaluates_few_shot_against_the_zero_shot_baseline(results):
    assert registry.get("few-shot").evaluation == "fewshot"
    assert registry.get("zero-shot").evaluation == registry.get("noop").evaluation == "standard"
    _, run = run_ptb(
        results, "run", "--task", "arith", "--model", "ptb-tiny", "--agent", "few-shot", "--minutes", "1",
        "--eval-limit", "3", "--sandbox", "none", "--network", "none",
    )  # fmt: skip
    rec = record(run)
    assert rec["final_model"]["state"] == "ok" and rec["outcome"]["final_score"] is not None
    final = json.loads((run / "metrics.json").read_text())
    assert final["template"] == "base.jinja" and final["fewshot"]["exemplars"] == 5 and final["n"] == 3
    base = json.loads((baseline_dir(RunRecord.model_validate(rec)) / "metrics.json").read_text())
    assert base["template"] == "qwen3.jinja" and base["fewshot"] is None
