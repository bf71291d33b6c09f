"""The hf backend's decoding loop (evaluation/decoding.py) against transformers' own `generate`, on
ptb-tiny in fp32 on the CPU (where the loop runs its steps eagerly, uncompiled): the same tokens,
greedy and sampled, with rows stopping at different steps; calls it does not reproduce go to
`generate`; and one generation through inspect's hf provider as the backend sets it up."""

from __future__ import annotations

import asyncio
import shutil

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, StopStringCriteria

from posttrainbench import models, settings
from posttrainbench.evaluation import backends, decoding
from posttrainbench.evaluation.decoding import DecodingLoop, settings_for, use_decoding_loop

# Left-padded to different lengths; ptb-tiny's greedy answers to these repeat one token and later
# switch to another (at different steps), which the tests make EOS.
PROMPTS = ["of answer", "what", "world 1 what of = of fox", "= 2 12 ."]
ATTENTION = ["sdpa", backends.register_gqa_sdpa()]  # the 2D-mask path, and the windowed one


@pytest.fixture(scope="module")
def path(ptb_home):
    return models.snapshot(models.get("ptb-tiny"), settings.model_cache())


@pytest.fixture(scope="module")
def tokenizer(path):
    return AutoTokenizer.from_pretrained(path, padding_side="left")


@pytest.fixture
def model(path):
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def batch(tokenizer):
    return tokenizer(PROMPTS, return_tensors="pt", padding=True)


def generate(model, batch, **kwargs) -> torch.Tensor:
    return model.generate(**batch, return_dict_in_generate=True, **kwargs).sequences


def decode(loop: DecodingLoop, batch, **kwargs) -> torch.Tensor:
    out = loop.try_generate(**batch, return_dict_in_generate=True, **kwargs)
    assert out is not None and out.logits is None and out.hidden_states is None
    return out.sequences


def answer_lengths(sequences: torch.Tensor, prompt: int, eos: list[int], pad: int) -> list[int | None]:
    """Each row's answer length up to and with its first EOS (None: no EOS); asserts pad after it."""
    lengths = []
    for row in sequences[:, prompt:].tolist():
        end = next((i + 1 for i, t in enumerate(row) if t in eos), None)
        assert end is None or all(t == pad for t in row[end:]), row
        lengths.append(end)
    return lengths


def switch_tokens(model, batch) -> list[int]:
    """Per row, the first token of its greedy answer that differs from the answer's first token."""
    new = generate(model, batch, do_sample=False, max_new_tokens=40)[:, batch.input_ids.shape[1] :]
    switches = [next((t for t in row if t != row[0]), None) for row in new.tolist()]
    assert None not in switches, f"ptb-tiny's greedy answers changed: {new.tolist()}"
    return switches


@pytest.mark.parametrize("attention", ATTENTION)
def test_greedy_matches_generate(model, batch, attention):
    model.set_attn_implementation(attention)
    loop = DecodingLoop(model, strict=True)
    prompt = batch.input_ids.shape[1]
    switches = switch_tokens(model, batch)

    # Three rows stop early, at different steps; the fourth runs to max_new_tokens.
    eos = switches[:3]
    reference = generate(model, batch, do_sample=False, max_new_tokens=40, eos_token_id=eos)
    assert torch.equal(decode(loop, batch, do_sample=False, max_new_tokens=40, eos_token_id=eos), reference)
    lengths = answer_lengths(reference, prompt, eos, pad=0)
    assert lengths[3] is None and len({*lengths[:3]}) == 3 and max(lengths[:3]) < 40, lengths

    # Every row stops: the loop notices at its next check and trims to the longest answer.
    eos = switches
    reference = generate(model, batch, do_sample=False, max_new_tokens=64, eos_token_id=eos)
    assert torch.equal(decode(loop, batch, do_sample=False, max_new_tokens=64, eos_token_id=eos), reference)
    lengths = answer_lengths(reference, prompt, eos, pad=0)
    assert None not in lengths and reference.shape[1] - prompt == max(lengths) < 48, lengths
    assert loop._state is not None and int(loop._state.step) == 48  # the first check after the last EOS

    # No EOS within 150 tokens: past the first 128-slot window, and with min_new_tokens.
    for kwargs in (
        {"max_new_tokens": 150},
        {"max_new_tokens": 30, "min_new_tokens": 20, "eos_token_id": eos},
    ):
        assert torch.equal(
            decode(loop, batch, do_sample=False, **kwargs), generate(model, batch, do_sample=False, **kwargs)
        )
    state = loop._state
    assert state is not None and state.length == 256 and state.windowed == (attention != "sdpa")

    # Three rows reuse the state (a fourth, dummy row decoded as finished).
    three = {k: v[:3] for k, v in batch.items()}
    assert torch.equal(
        decode(loop, three, do_sample=False, max_new_tokens=40),
        generate(model, three, do_sample=False, max_new_tokens=40),
    )
    assert loop._state is state and loop.calls == 5


@pytest.mark.parametrize("attention", ATTENTION)
def test_sampling(model, batch, attention):
    model.set_attn_implementation(attention)
    loop = DecodingLoop(model, strict=True)
    prompt = batch.input_ids.shape[1]
    greedy = decode(loop, batch, do_sample=False, max_new_tokens=20)
    assert torch.equal(decode(loop, batch, do_sample=True, top_k=1, max_new_tokens=20), greedy)

    # The few-shot protocol's sampling, with EOS frequent enough that rows stop at different steps.
    eos = list(range(1, model.config.vocab_size, 5))
    kwargs = dict(do_sample=True, temperature=0.6, top_p=0.95, top_k=20, max_new_tokens=40, eos_token_id=eos)
    torch.manual_seed(0)
    sampled = decode(loop, batch, **kwargs)
    assert 0 <= int(sampled.min()) and int(sampled.max()) < model.config.vocab_size
    lengths = answer_lengths(sampled, prompt, eos, pad=0)
    assert len(set(lengths)) > 1, lengths
    # The draw is torch.multinomial's own (an exponential race), so the same seed gives generate's tokens.
    torch.manual_seed(0)
    assert torch.equal(sampled, generate(model, batch, **kwargs))


@pytest.mark.skipif(shutil.which("g++") is None, reason="torch.compile on the CPU needs a C++ compiler")
def test_compiled_steps(model, batch):
    """The steps compiled as on a GPU (inductor's CPU code here, no CUDA graphs): the same tokens,
    across two windows and two states."""
    model.set_attn_implementation(backends.register_gqa_sdpa())
    loop = DecodingLoop(model, compile=True, strict=True)
    try:
        for rows, new in ((4, 150), (3, 40)):
            part = {k: v[:rows] for k, v in batch.items()}
            kwargs = dict(do_sample=False, max_new_tokens=new)
            assert torch.equal(decode(loop, part, **kwargs), generate(model, part, **kwargs))
        assert loop.calls == 2 and loop._forward is not None
    finally:
        torch._dynamo.reset()


def test_unsupported_calls_go_to_generate(model, batch, tokenizer, monkeypatch):
    plain = model.generate
    loop = use_decoding_loop(model)
    assert model.decoding_loop is loop and loop.disabled is None
    greedy = dict(do_sample=False, max_new_tokens=12, return_dict_in_generate=True)
    for extra in (
        {"output_logits": True},
        {"output_scores": True},
        {"output_hidden_states": True},
        {"stopping_criteria": [StopStringCriteria(tokenizer, ["answer"])]},
        {"repetition_penalty": 1.3},
        {"no_repeat_ngram_size": 2},
        {"num_beams": 2},
    ):
        assert settings_for(model, greedy | extra) is None, extra
        ours, theirs = model.generate(**batch, **greedy, **extra), plain(**batch, **greedy, **extra)
        assert torch.equal(ours.sequences, theirs.sequences), extra
        assert (ours.logits is None) == (theirs.logits is None), extra
    assert loop.calls == 0
    with pytest.raises(ValueError, match="not used by the model"):  # generate's own check
        model.generate(**batch, **greedy, not_a_setting=1)
    assert model.generate(**batch, **greedy).logits is None and loop.calls == 1
    # A new state that would take more than half the free memory: generate, too.
    monkeypatch.setattr(decoding, "free_memory", lambda device: 0)
    assert loop.try_generate(**batch, **greedy | {"max_new_tokens": 300}) is None
    assert torch.equal(model.generate(**batch, **greedy).sequences, plain(**batch, **greedy).sequences)
    assert loop.calls == 2  # the state it has still serves a call that fits it


def test_through_inspect(path, monkeypatch):
    """The backend's model, served by inspect's hf provider on the CPU, with the loop applied as on a
    GPU: one generation from the loop, the same text from generate."""
    from inspect_ai.model import GenerateConfig

    served = backends._hf(path, models.template_file("qwen3"), batch_size=4, sample=False)
    hf_model = served.api.model  # type: ignore[attr-defined]
    backends.compiled_decoding(hf_model)
    loop = hf_model.decoding_loop
    config = GenerateConfig(max_tokens=12)
    ours = asyncio.run(served.generate("What is 12 * 7?", config=config))
    assert isinstance(ours.completion, str) and ours.completion and loop.calls == 1
    monkeypatch.setattr(loop, "disabled", "off for the comparison")
    theirs = asyncio.run(served.generate("What is 12 * 7?", config=config))
    assert theirs.completion == ours.completion and loop.calls == 1


def test_cache_grows(model, batch, monkeypatch):
    """A windowed state starts with room for GROW_FROM new tokens and doubles its cache when an answer
    runs past it, with the same tokens as generate; where the larger cache would not fit, the call goes
    to generate and the loop stays on."""
    monkeypatch.setattr(decoding, "GROW_FROM", 100)
    model.set_attn_implementation(backends.register_gqa_sdpa())
    plain = model.generate
    loop = use_decoding_loop(model, strict=True)
    greedy = dict(do_sample=False, return_dict_in_generate=True)
    prompt = batch.input_ids.shape[1]

    out = model.generate(**batch, **greedy, max_new_tokens=300)
    assert torch.equal(out.sequences, plain(**batch, **greedy, max_new_tokens=300).sequences)
    state = loop._state
    assert state is not None and state.windowed and state.length == 512 and loop.calls == 1
    assert state.cache.layers[0].keys.shape[2] == 512 and state.padding.shape[1] == state.out.shape[1] == 512

    loop.release()
    out = model.generate(**batch, **greedy, max_new_tokens=60)  # a new state of 256 slots: no growth
    assert loop._state is not None and loop._state.length == 256 and prompt + 100 <= 256
    monkeypatch.setattr(decoding, "free_memory", lambda device: 0)
    out = model.generate(**batch, **greedy, max_new_tokens=300)
    assert torch.equal(out.sequences, plain(**batch, **greedy, max_new_tokens=300).sequences)
    assert loop.calls == 2 and loop.disabled is None and loop._state.length == 256
