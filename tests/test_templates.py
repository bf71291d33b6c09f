"""Chat templates of the three model families (src/posttrainbench/templates/<family>.jinja).

Each template is rendered by a real transformers tokenizer (ptb-tiny's): `apply_chat_template` compiles
it in transformers' jinja2 ImmutableSandboxedEnvironment (trim_blocks, lstrip_blocks), the environment
vLLM uses too. Exact strings are asserted for plain, system, multi-turn and tool-calling conversations.
Inspect's hf provider must render the same prompt from inspect's own message and tool objects, and its
tool-call parser (the one used for `hf/local`) must read back the Hermes calls the templates teach.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import pytest
from inspect_ai.model import (
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageTool,
    ChatMessageUser,
    get_model,
)
from inspect_ai.model._providers.util.hf_handler import HFHandler
from inspect_ai.tool import ToolCall, ToolInfo
from jinja2.exceptions import TemplateError
from transformers import AutoTokenizer

from posttrainbench import models, settings

FAMILIES = ("qwen3", "smollm3", "gemma3")

SYSTEM = "You are a careful assistant."
QUESTION = "What is 12 + 30?"

# BFCL-like spec (nested object and array parameters), key order as inspect's ToolInfo dumps it.
WEATHER = {
    "name": "get_weather",
    "description": "Current weather at a location.",
    "parameters": {
        "type": "object",
        "properties": {
            "location": {
                "type": "object",
                "description": "Where to look.",
                "properties": {
                    "city": {"type": "string", "description": "City name."},
                    "coordinates": {
                        "type": "array",
                        "description": "Latitude and longitude.",
                        "items": {"type": "number"},
                    },
                },
                "required": ["city"],
            },
            "unit": {"type": "string", "description": "Temperature unit.", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["location"],
        "additionalProperties": False,
    },
}
TOOLS = [{"type": "function", "function": WEATHER}]  # OpenAI style, as vLLM and transformers pass them
TOOL_JSON = json.dumps(TOOLS[0])
PARIS = {"location": {"city": "Paris"}, "unit": "celsius"}
ROME = {"location": {"city": "Rome", "coordinates": [41.9, 12.5]}}
PARIS_CALL = (
    '<tool_call>\n{"name": "get_weather", "arguments": {"location": {"city": "Paris"}, "unit": "celsius"}}'
    "\n</tool_call>"
)
ROME_CALL = (
    '<tool_call>\n{"name": "get_weather", '
    '"arguments": {"location": {"city": "Rome", "coordinates": [41.9, 12.5]}}}\n</tool_call>'
)

SINGLE = [{"role": "user", "content": QUESTION}]
WITH_SYSTEM = [{"role": "system", "content": SYSTEM}, *SINGLE]
MULTI_TURN = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello! How can I help?"},
    {"role": "user", "content": QUESTION},
]
TOOL_ROUND = [
    {"role": "user", "content": "Weather in Paris and Rome?"},
    {
        "role": "assistant",
        "content": "Let me check.",
        "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": PARIS}},
            {"type": "function", "function": {"name": "get_weather", "arguments": ROME}},
        ],
    },
    {"role": "tool", "content": "18 degrees, sunny"},
    {"role": "tool", "content": "24 degrees, cloudy"},
]

HERMES_INSTRUCTION = (
    "For each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)
# Qwen3's tool block; the Gemma template reuses its wording.
QWEN_TOOLS = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n"
    f"<tools>\n{TOOL_JSON}\n</tools>\n\n{HERMES_INSTRUCTION}"
)
SMOL_TOOLS = (
    "### Tools\n\nYou may call one or more functions to assist with the user query.\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n\n"
    f"<tools>\n{TOOL_JSON}\n</tools>\n\n{HERMES_INSTRUCTION}\n\n"
)
SMOL_HEADER = (
    "<|im_start|>system\n## Metadata\n\nKnowledge Cutoff Date: June 2025\nReasoning Mode: /think\n\n"
    "## Custom Instructions\n\n"
)
SMOL_DEFAULT_THINK = (
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face. Your role as an assistant "
    "involves thoroughly exploring questions through a systematic thinking process before providing the "
    "final precise and accurate solutions. This requires engaging in a comprehensive cycle of analysis, "
    "summarizing, exploration, reassessment, reflection, backtracking, and iteration to develop "
    "well-considered thinking process. Please structure your response into two main sections: Thought and "
    "Solution using the specified format: <think> Thought section </think> Solution section. In the "
    "Thought section, detail your reasoning process in steps. Each step should include detailed "
    "considerations such as analysing questions, summarizing relevant findings, brainstorming new ideas, "
    "verifying the accuracy of the current steps, refining any errors, and revisiting previous steps. In "
    "the Solution section, based on various attempts, explorations, and reflections from the Thought "
    "section, systematically present the final solution that you deem correct. The Solution section "
    "should be logical, accurate, and concise and detail necessary steps needed to reach the conclusion.\n\n"
)

EXPECTED = {
    "qwen3": {
        "single": f"<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n",
        "system": (
            f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{QUESTION}<|im_end|>\n"
            "<|im_start|>assistant\n"
        ),
        "multi_turn": (
            f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello! How can I help?<|im_end|>\n"
            f"<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n"
        ),
        "tools": (
            f"<|im_start|>system\n{SYSTEM}\n\n{QWEN_TOOLS}<|im_end|>\n"
            f"<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n"
        ),
        "tool_round": (
            f"<|im_start|>system\n{QWEN_TOOLS}<|im_end|>\n"
            "<|im_start|>user\nWeather in Paris and Rome?<|im_end|>\n"
            f"<|im_start|>assistant\nLet me check.\n{PARIS_CALL}\n{ROME_CALL}<|im_end|>\n"
            "<|im_start|>user\n<tool_response>\n18 degrees, sunny\n</tool_response>\n"
            "<tool_response>\n24 degrees, cloudy\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
        ),
    },
    "smollm3": {
        "single": (
            f"{SMOL_HEADER}{SMOL_DEFAULT_THINK}<|im_end|>\n<|im_start|>user\n{QUESTION}<|im_end|>\n"
            "<|im_start|>assistant\n"
        ),
        "system": (
            f"{SMOL_HEADER}{SYSTEM}\n\n<|im_end|>\n<|im_start|>user\n{QUESTION}<|im_end|>\n"
            "<|im_start|>assistant\n"
        ),
        "multi_turn": (
            f"{SMOL_HEADER}{SYSTEM}\n\n<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello! How can I help?<|im_end|>\n"
            f"<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n"
        ),
        "tools": (
            f"{SMOL_HEADER}{SYSTEM}\n\n{SMOL_TOOLS}<|im_end|>\n<|im_start|>user\n{QUESTION}<|im_end|>\n"
            "<|im_start|>assistant\n"
        ),
        "tool_round": (
            f"{SMOL_HEADER}{SMOL_DEFAULT_THINK}{SMOL_TOOLS}<|im_end|>\n"
            "<|im_start|>user\nWeather in Paris and Rome?<|im_end|>\n"
            f"<|im_start|>assistant\nLet me check.\n{PARIS_CALL}\n{ROME_CALL}<|im_end|>\n"
            "<|im_start|>user\n<tool_response>\n18 degrees, sunny\n</tool_response>\n"
            "<tool_response>\n24 degrees, cloudy\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
        ),
    },
    "gemma3": {
        "single": f"<bos><start_of_turn>user\n{QUESTION}<end_of_turn>\n<start_of_turn>model\n",
        "system": f"<bos><start_of_turn>user\n{SYSTEM}\n\n{QUESTION}<end_of_turn>\n<start_of_turn>model\n",
        "multi_turn": (
            f"<bos><start_of_turn>user\n{SYSTEM}\n\nHi<end_of_turn>\n"
            "<start_of_turn>model\nHello! How can I help?<end_of_turn>\n"
            f"<start_of_turn>user\n{QUESTION}<end_of_turn>\n<start_of_turn>model\n"
        ),
        "tools": (
            f"<bos><start_of_turn>user\n{SYSTEM}\n\n{QWEN_TOOLS}\n\n{QUESTION}<end_of_turn>\n"
            "<start_of_turn>model\n"
        ),
        "tool_round": (
            f"<bos><start_of_turn>user\n{QWEN_TOOLS}\n\nWeather in Paris and Rome?<end_of_turn>\n"
            f"<start_of_turn>model\nLet me check.\n{PARIS_CALL}\n{ROME_CALL}<end_of_turn>\n"
            "<start_of_turn>user\n<tool_response>\n18 degrees, sunny\n</tool_response>\n"
            "<tool_response>\n24 degrees, cloudy\n</tool_response><end_of_turn>\n<start_of_turn>model\n"
        ),
    },
}
CASES = {
    "single": (SINGLE, None),
    "system": (WITH_SYSTEM, None),
    "multi_turn": (MULTI_TURN, None),
    "tools": (WITH_SYSTEM, TOOLS),
    "tool_round": (TOOL_ROUND, TOOLS),
}
# Where an assistant turn starts and ends, to cut a model reply out of a rendering.
ASSISTANT_TURN = {
    "qwen3": ("<|im_start|>assistant\n", "<|im_end|>"),
    "smollm3": ("<|im_start|>assistant\n", "<|im_end|>"),
    "gemma3": ("<start_of_turn>model\n", "<end_of_turn>"),
}


def template(family: str) -> str:
    return models.template_file(family).read_text()


@pytest.fixture(scope="module")
def tiny_dir(ptb_home) -> Path:
    return models.snapshot(models.get("ptb-tiny"), settings.model_cache())


@pytest.fixture(scope="module")
def tokenizer(tiny_dir):
    return AutoTokenizer.from_pretrained(tiny_dir)


def render(
    tokenizer, family: str, messages: list[dict], tools=None, generation_prompt: bool = True, **kw
) -> str:
    # ptb-tiny's tokenizer has no BOS token; give Gemma's, so its place in the prompt is checked too.
    kw = {"bos_token": "<bos>", **kw} if family == "gemma3" else kw
    return tokenizer.apply_chat_template(
        messages,
        tools=tools,
        tokenize=False,
        add_generation_prompt=generation_prompt,
        chat_template=template(family),
        **kw,
    )


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("family", FAMILIES)
def test_exact_rendering(tokenizer, family, case):
    messages, tools = CASES[case]
    assert render(tokenizer, family, messages, tools) == EXPECTED[family][case]


def test_every_family_has_a_template():
    # and the plain template of the few-shot protocol (tests/test_fewshot.py)
    assert sorted(p.stem for p in models.TEMPLATES_DIR.glob("*.jinja")) == sorted(
        [*FAMILIES, models.PLAIN_TEMPLATE]
    )
    assert set(models.FAMILY_BY_MODEL_TYPE.values()) == set(FAMILIES)


def official(name: str) -> str:
    """An upstream template as the pinned TRL ships it (byte-identical to the model repo's)."""
    return (files("trl") / "chat_templates" / f"{name}.jinja").read_text()


@pytest.mark.parametrize(
    ("family", "cases"),
    [("qwen3", list(CASES)), ("gemma3", ["single", "system", "multi_turn"])],  # upstream Gemma 3 has no tools
)
def test_prompts_match_the_official_template(tokenizer, family, cases):
    for case in cases:
        messages, tools = CASES[case]
        kw = {"chat_template": official(family), "tokenize": False, "add_generation_prompt": True}
        if family == "gemma3":
            kw["bos_token"] = "<bos>"
        assert tokenizer.apply_chat_template(messages, tools=tools, **kw) == EXPECTED[family][case], case


def test_qwen3_thinking(tokenizer):
    prompt = EXPECTED["qwen3"]["single"]
    # A fine-tuning target without reasoning is the bare answer (upstream prepends an empty think block).
    answer = {"role": "assistant", "content": "42"}
    assert render(tokenizer, "qwen3", [*SINGLE, answer], generation_prompt=False) == prompt + "42<|im_end|>\n"
    upstream = tokenizer.apply_chat_template(
        [*SINGLE, answer], tokenize=False, chat_template=official("qwen3")
    )
    assert upstream == prompt + "<think>\n\n</think>\n\n42<|im_end|>\n"
    # Reasoning, given apart or inline, is kept.
    reasoned = prompt + "<think>\nAdd them.\n</think>\n\n42<|im_end|>\n"
    for turn in (
        {"role": "assistant", "content": "42", "reasoning_content": "Add them."},
        {"role": "assistant", "content": "<think>\nAdd them.\n</think>\n\n42"},
    ):
        assert render(tokenizer, "qwen3", [*SINGLE, turn], generation_prompt=False) == reasoned
    # Thinking is on unless enable_thinking is false (inspect passes None when it is not set).
    assert render(tokenizer, "qwen3", SINGLE, enable_thinking=None) == prompt
    assert render(tokenizer, "qwen3", SINGLE, enable_thinking=False) == prompt + "<think>\n\n</think>\n\n"


def test_smollm3_thinking_and_no_date(tokenizer):
    # inspect's hf provider passes enable_thinking=None when it is not set: the default (thinking on).
    assert render(tokenizer, "smollm3", SINGLE, enable_thinking=None) == EXPECTED["smollm3"]["single"]
    off = render(tokenizer, "smollm3", WITH_SYSTEM, enable_thinking=False)
    assert off == (
        "<|im_start|>system\n## Metadata\n\nKnowledge Cutoff Date: June 2025\nReasoning Mode: /no_think\n\n"
        f"## Custom Instructions\n\n{SYSTEM}\n\n<|im_end|>\n<|im_start|>user\n{QUESTION}<|im_end|>\n"
        "<|im_start|>assistant\n<think>\n\n</think>\n"
    )
    assert "strftime_now(" not in template("smollm3")


def test_gemma3_roles_must_alternate(tokenizer):
    with pytest.raises(TemplateError, match="alternate"):
        render(tokenizer, "gemma3", [*SINGLE, *SINGLE])
    # A run of tool results is one user turn, so a reply to it is in turn.
    reply = {"role": "assistant", "content": "Paris is sunny, Rome cloudy."}
    rendered = render(tokenizer, "gemma3", [*TOOL_ROUND, reply], TOOLS, generation_prompt=False)
    assert rendered.endswith(
        "</tool_response><end_of_turn>\n<start_of_turn>model\nParis is sunny, Rome cloudy.<end_of_turn>\n"
    )


def as_content_parts(messages: list[dict]) -> list[dict]:
    """Messages as vLLM hands them to a template it detects as iterating over content (Gemma's):
    content as a list of text parts, except tool results, which vLLM keeps as strings."""
    return [
        m if m["role"] == "tool" else {**m, "content": [{"type": "text", "text": m["content"]}]}
        for m in messages
    ]


@pytest.mark.parametrize("case", ["system", "multi_turn", "tool_round"])
def test_gemma3_content_parts_render_like_strings(tokenizer, case):
    messages, tools = CASES[case]
    assert render(tokenizer, "gemma3", as_content_parts(messages), tools) == EXPECTED["gemma3"][case]


@pytest.fixture(scope="module")
def hf_models(tiny_dir):
    """inspect's hf provider on ptb-tiny, once per family template, as the evaluation runner builds it."""
    return {
        family: get_model("hf/local", model_path=str(tiny_dir), chat_template=template(family), device="cpu")
        for family in FAMILIES
    }


def inspect_tool_round() -> list:
    return [
        ChatMessageUser(content="Weather in Paris and Rome?"),
        ChatMessageAssistant(
            content="Let me check.",
            tool_calls=[
                ToolCall(id="call_1", function="get_weather", arguments=PARIS),
                ToolCall(id="call_2", function="get_weather", arguments=ROME),
            ],
        ),
        ChatMessageTool(content="18 degrees, sunny", tool_call_id="call_1", function="get_weather"),
        ChatMessageTool(content="24 degrees, cloudy", tool_call_id="call_2", function="get_weather"),
    ]


@pytest.mark.parametrize("family", FAMILIES)
def test_inspect_hf_provider_renders_the_same_prompt(hf_models, tokenizer, family):
    """inspect passes bare tool specs and its own ToolCall objects; the prompt must be the one an OpenAI-style
    request (vLLM) gets."""
    api = hf_models[family].api
    info = ToolInfo.model_validate(WEATHER)
    assert api.hf_chat(inspect_tool_round(), [info]) == render(
        tokenizer, family, TOOL_ROUND, TOOLS, bos_token=""
    )
    plain = [ChatMessageSystem(content=SYSTEM), ChatMessageUser(content=QUESTION)]
    assert api.hf_chat(plain, []) == render(tokenizer, family, WITH_SYSTEM, bos_token="")


@pytest.fixture(scope="module")
def handler(hf_models) -> HFHandler:
    """The tool-call parser inspect's hf provider uses for `hf/local`, with the names it gives it."""
    api = hf_models["qwen3"].api
    assert (api.model_name, api.model_family()) == ("local", "local")
    return HFHandler(api.model_name, api.model_family())


def test_parses_a_hermes_call(handler):
    message = handler.parse_assistant_response(PARIS_CALL, [ToolInfo.model_validate(WEATHER)])
    assert message.text == ""
    [call] = message.tool_calls
    assert (call.function, call.arguments, call.parse_error) == ("get_weather", PARIS, None)


def test_parses_text_before_parallel_calls(handler):
    reply = f"Let me check.\n{PARIS_CALL}\n{ROME_CALL}"
    message = handler.parse_assistant_response(reply, [ToolInfo.model_validate(WEATHER)])
    assert message.text == "Let me check."
    assert [(c.function, c.arguments, c.parse_error) for c in message.tool_calls] == [
        ("get_weather", PARIS, None),
        ("get_weather", ROME, None),
    ]


def test_malformed_call_sets_parse_error(handler):
    broken = '<tool_call>\n{"name": "get_weather", "arguments": {"location": {"city": "Paris"}}\n</tool_call>'
    [call] = handler.parse_assistant_response(broken, [ToolInfo.model_validate(WEATHER)]).tool_calls
    assert call.function == "unknown" and call.arguments == {}
    assert call.parse_error and "Error parsing" in call.parse_error


def test_reply_without_call_is_plain_text(handler):
    message = handler.parse_assistant_response("It is sunny.", [ToolInfo.model_validate(WEATHER)])
    assert message.text == "It is sunny." and not message.tool_calls


@pytest.mark.parametrize("family", FAMILIES)
def test_parser_reads_back_what_the_template_teaches(tokenizer, handler, family):
    """The assistant turn a model is fine-tuned on parses back to the call."""
    turn = {"role": "assistant", "content": "", "tool_calls": [TOOL_ROUND[1]["tool_calls"][0]]}
    rendered = render(tokenizer, family, [SINGLE[0], turn], TOOLS, generation_prompt=False)
    start, end = ASSISTANT_TURN[family]
    reply = rendered.rsplit(start, 1)[1].split(end, 1)[0]
    message = handler.parse_assistant_response(reply, [ToolInfo.model_validate(WEATHER)])
    [call] = message.tool_calls
    assert (call.function, call.arguments, call.parse_error) == ("get_weather", PARIS, None)
    assert message.text == ""
