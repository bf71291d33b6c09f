"""A decoding loop for causal LMs that does what transformers' `generate` does for greedy decoding and
plain sampling, without its per-step host work.

The hf backend wraps `model.generate` with `use_decoding_loop`: a call the loop handles is decoded
here, any other goes to the wrapped `generate` unchanged (so scores never change silently). Handled:
a left-padded `input_ids` batch with its `attention_mask` (without one generate infers it from the
pad token: left to generate), `max_new_tokens`, `min_new_tokens`, `do_sample` with transformers'
temperature, top-k and top-p warpers (its global default top_k=50 included), `eos_token_id` /
`pad_token_id`, `return_dict_in_generate`, `generation_config`; every other setting must keep its
library default, after transformers resolves the call against `model.generation_config` exactly as
`generate` does. So output_logits/output_scores, output_hidden_states, stopping_criteria and stop
strings, beams, repetition penalties, assistant models and unknown keyword arguments all go to
`generate`. An error inside the loop (a model it cannot run) disables it for that model, with a
warning, and the call goes to `generate` (unless `strict`, as in bench/gpu_generate.py).

How: the batch is prefilled once through the model's own `prepare_inputs_for_generation` (what
`generate` calls) into a transformers `StaticCache`; then one token per step from static buffers
updated in place on the device (the token each row feeds, its position, the cache slot, the padding
mask, the finished rows). Tokens are chosen on the device as `generate` chooses them (argmax, or
softmax then `torch.multinomial`'s own exponential-race draw, which is capturable); finished rows
emit pad; the host asks whether every row has finished only every `CHECK_EVERY` steps and the output
is trimmed to the longest answer, so `.sequences` is `generate`'s, pad after EOS.

On CUDA the model's forward is compiled (inductor, no CUDA graphs of its own) and each decoding
step, the token choice included, is captured as a CUDA graph and replayed: a step costs one graph
launch on the host. With the hf backend's GQA attention (`backends.gqa_sdpa_attention`) and a cache
of full attention layers only, a step attends to a window of the cache (its first multiple of
`WINDOW` slots that covers the tokens so far) instead of the whole static length, one graph per
window. On CPU the same steps run eagerly, uncompiled unless `compile=True` (that is how
tests/test_decoding.py checks them against `generate`).

State and recompiles: the loop keeps one state (the static cache, the step buffers, the graphs) per
model, for `batch` rows and a cache of `length` slots, `length` being prompt + max_new_tokens (or
generation_config.max_cache_len, if longer) rounded up to a multiple of `LENGTH_BUCKET`. A windowed
state starts smaller, at prompt + `GROW_FROM` new tokens (most answers end sooner than a 16k budget),
and doubles its cache, layer by layer, when an answer runs past it, if the larger cache fits in
`GROW_SHARE` of the free memory; if not, that call goes to `generate` from the start. A call
reuses the state when its batch fits in [state batch / 2, state batch] (the missing rows are decoded
as finished dummies), its prompt + max_new_tokens (a windowed state: its starting length) in `length`
and the model's attention implementation is unchanged; otherwise the state is replaced, if batch x
length x the KV bytes per token fits in half the free device memory (else the call goes to
`generate`, whose own rule picks its cache). The KV cache (e.g. 256 rows x 512 slots of
Qwen3-1.7B in bf16: 14 GiB) and the graphs' memory pool stay allocated between calls, until
`release()`. torch.compile (dynamo's automatic dynamic shapes, the window's length marked dynamic;
a grown cache is another length) compiles the forward twice on the first state (the windows shorter
than the cache, then the whole cache), once more on the first state of another batch or length
(those sizes then dynamic), and then no more: later states and windows reuse that code (a shape past
torch._dynamo's recompile limit would run uncompiled, still captured). A new state, window or
token-choice setting captures a new graph, which costs one step's time, no compile.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, StaticCache

log = logging.getLogger(__name__)

CHECK_EVERY = 16  # steps between the host's "has every row finished?" checks
LENGTH_BUCKET = 256  # the static cache's length is rounded up to a multiple of this
WINDOW = 128  # attention window granularity (slots), where the attention supports windows
GROW_FROM = 1024  # new tokens a windowed state's first cache holds past the prompt; it doubles as needed
GROW_SHARE = 0.9  # of the free memory, what a growing cache may take (the prefill is done by then)

# Generation settings the loop reproduces, and settings with no effect on one greedy or sampled
# sequence per row (beam-search, assistant, cache and compile options): every other setting must keep
# transformers' default for the loop to take the call.
_HANDLED = {
    "max_new_tokens", "max_length", "min_new_tokens", "do_sample", "temperature", "top_k", "top_p",
    "eos_token_id", "pad_token_id", "bos_token_id", "return_dict_in_generate", "max_cache_len",
}  # fmt: skip
_NO_EFFECT = {
    "early_stopping", "length_penalty", "diversity_penalty", "num_assistant_tokens",
    "num_assistant_tokens_schedule", "assistant_confidence_threshold", "assistant_lookbehind",
    "target_lookbehind", "cache_implementation", "cache_config", "compile_config",
    "disable_compile", "decoder_start_token_id", "transformers_version",
}  # fmt: skip


@dataclass(frozen=True)
class Choice:
    """How each step's token is chosen (a captured graph bakes these in)."""

    sample: bool
    temperature: float | None
    top_k: int | None
    top_p: float | None
    min_new: int
    eos: tuple[int, ...]
    pad: int

    def warpers(self) -> list[Callable]:
        """transformers' sampling warpers, in `generate`'s order and under its conditions."""
        from transformers.generation.logits_process import (
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        if not self.sample:
            return []
        warpers: list[Callable] = []
        if self.temperature is not None and self.temperature != 1.0:
            warpers.append(TemperatureLogitsWarper(self.temperature))
        if self.top_k is not None and self.top_k != 0:
            warpers.append(TopKLogitsWarper(top_k=self.top_k, min_tokens_to_keep=1))
        if self.top_p is not None and self.top_p < 1.0:
            warpers.append(TopPLogitsWarper(top_p=self.top_p, min_tokens_to_keep=1))
        return warpers


@dataclass(frozen=True)
class Settings:
    """A call's settings, as the loop takes them."""

    choice: Choice
    max_new: int
    return_dict: bool
    cache_len: int  # generation_config.max_cache_len: the least length of the static cache (0: none)


def settings_for(model: PreTrainedModel, kwargs: dict[str, Any]) -> Settings | None:
    """The call's settings as `generate` would resolve them, or None where the loop does not handle
    them. `kwargs`: generate's keyword arguments other than input_ids and attention_mask."""
    from transformers import GenerationConfig
    from transformers.generation.configuration_utils import GenerationMode

    kwargs = dict(kwargs)
    try:
        config, model_kwargs = model._prepare_generation_config(
            kwargs.pop("generation_config", None), **kwargs
        )
        mode = config.get_generation_mode()
    except Exception:  # generate raises the same, with its own message
        return None
    # What is not a generation setting (stopping_criteria, logits_processor, assistant_model, streamer,
    # a model input...) is taken only where it is None: generate ignores it then.
    if any(v is not None for v in model_kwargs.values()):
        return None
    if mode not in (GenerationMode.GREEDY_SEARCH, GenerationMode.SAMPLE):
        return None
    defaults = GenerationConfig()
    defaults.update(**defaults._get_default_generation_params(), defaults_only=True)
    effective, default = config.to_dict(), defaults.to_dict()
    for key in (effective.keys() | default.keys()) - _HANDLED - _NO_EFFECT:
        value, usual = effective.get(key), default.get(key)
        if not key.startswith("_") and value != usual and not (_unset(value) and _unset(usual)):
            return None
    max_new, min_new = config.max_new_tokens, config.min_new_tokens or 0
    if not isinstance(max_new, int) or max_new < 1 or not isinstance(min_new, int) or min_new < 0:
        return None
    eos = config.eos_token_id
    eos = () if eos is None else (eos,) if isinstance(eos, int) else tuple(eos)
    pad = config.pad_token_id if config.pad_token_id is not None else (eos[0] if eos else 0)
    choice = Choice(bool(config.do_sample), config.temperature, config.top_k, config.top_p, min_new, eos, pad)
    try:
        choice.warpers()  # their own argument checks: generate raises on the same values
    except ValueError:
        return None
    return Settings(choice, max_new, bool(config.return_dict_in_generate), config.max_cache_len or 0)


def _unset(value: object) -> bool:
    """None or False: an unset flag is False to transformers (output_attentions=False is no change); not
    0, which can be a token id."""
    return value is None or value is False


def kv_bytes_per_token(model: PreTrainedModel) -> int:
    """KV cache bytes one token takes over all layers."""
    c = model.config.get_text_config()
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    return 2 * c.num_hidden_layers * c.num_key_value_heads * head_dim * model.dtype.itemsize


def free_memory(device: torch.device) -> int:
    """Bytes free on `device`, counting what torch's allocator holds unused as free."""
    import torch

    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    import psutil

    return psutil.virtual_memory().available


def fits(nbytes: int, device: torch.device, freed: int = 0, share: float = 0.5) -> bool:
    """Whether a cache of `nbytes` takes at most `share` of what is free on `device` once `freed` bytes
    held now are released: with the default half, the rule both the loop's new state and generate's
    static cache follow."""
    return nbytes <= share * (free_memory(device) + freed)


class _CacheFull(Exception):
    """The loop's cache cannot grow as far as the answers need: the call goes to generate."""


@dataclass
class _Graphs:
    """The captured steps of one `Choice`, and the device constants they read."""

    choice: Choice
    eos: torch.Tensor  # the EOS ids
    eos_vocab: torch.Tensor | None = None  # (vocab,) bool, set on the first token choice
    by_window: dict[int, Any] = field(default_factory=dict)  # window -> torch.cuda.CUDAGraph


@dataclass
class _State:
    batch: int
    length: int
    attention: str  # the model's attention implementation when the state was made
    windowed: bool
    cache: StaticCache
    tokens: torch.Tensor  # (batch, 1): the token each row feeds next
    positions: torch.Tensor  # (batch, 1): its position id
    slot: torch.Tensor  # (): the cache slot the next step writes
    padding: torch.Tensor  # (batch, length) bool: the prompt's real tokens, and every slot after it
    slots: torch.Tensor  # (length,): 0..length-1
    step: torch.Tensor  # (1,): index of the next new token
    done: torch.Tensor  # (batch,) bool: the row has emitted EOS (dummy rows start done)
    ended: torch.Tensor  # (batch,): the row's answer length, EOS included
    out: torch.Tensor  # (batch, length): the new tokens
    pool: Any = None  # the graphs' shared memory pool
    graphs: _Graphs | None = None

    @property
    def nbytes(self) -> int:
        cache = sum(t.numel() * t.element_size() for layer in self.cache.layers
                    for t in (getattr(layer, "keys", None), getattr(layer, "values", None)) if t is not None)  # fmt: skip
        return cache + self.padding.numel() + self.out.numel() * self.out.element_size()


class DecodingLoop:
    """The decoding loop of one model; see the module docstring."""

    def __init__(self, model: PreTrainedModel, compile: bool | None = None, strict: bool = False):
        self.model = model
        self.cuda = model.device.type == "cuda"
        self.compile = self.cuda if compile is None else compile
        self.strict = strict  # raise the loop's own errors instead of handing the call to generate
        self.disabled: str | None = self._unsupported_model()
        self.calls = 0  # calls decoded here
        self._state: _State | None = None
        self._forward: Callable | None = None

    def _unsupported_model(self) -> str | None:
        m = self.model
        if m.config.is_encoder_decoder or not m._supports_default_dynamic_cache():
            return "not a decoder-only model with a standard KV cache"
        if getattr(m, "hf_quantizer", None) is not None:
            return "quantized"
        if len(set(getattr(m, "hf_device_map", {}).values())) > 1:
            return "spread over several devices"
        if "position_ids" not in inspect.signature(m.forward).parameters:
            return "its forward takes no position_ids"
        return None

    def release(self) -> None:
        """Free the static cache, buffers and graphs (the compiled forward stays)."""
        import torch

        self._state = None
        if self.cuda:
            torch.cuda.empty_cache()

    def try_generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs):
        """What `model.generate(input_ids=..., attention_mask=..., **kwargs)` returns, or None where the
        loop does not take the call."""
        import torch

        # Without a mask generate infers one from the pad token: that call is left to it.
        if self.disabled or attention_mask is None or attention_mask.shape != input_ids.shape:
            return None
        if input_ids.ndim != 2 or input_ids.device != self.model.device:
            return None
        settings = settings_for(self.model, kwargs)
        if settings is None:
            return None
        try:
            with torch.inference_mode():
                sequences = self._generate(input_ids, attention_mask, settings)
        except _CacheFull as e:
            log.warning("decoding loop: %s; model.generate decodes this call from the start", e)
            return None
        except Exception as e:
            if self.strict:
                raise
            # A bug or an unsupported model here must not stop an evaluation: generate takes over.
            self.disabled = f"{type(e).__name__}: {e}"
            self._state = None
            log.warning("decoding loop disabled, model.generate takes over: %s", self.disabled, exc_info=True)
            return None
        if sequences is None:
            return None
        self.calls += 1
        if not settings.return_dict:
            return sequences
        from transformers.generation.utils import GenerateDecoderOnlyOutput

        return GenerateDecoderOnlyOutput(sequences=sequences)

    def _generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, s: Settings):
        import torch

        batch, prompt = input_ids.shape
        need = max(prompt + s.max_new, s.cache_len)
        st = self._state_for(batch, need, start=max(min(need, prompt + GROW_FROM), s.cache_len))
        if st is None:
            return None
        c = s.choice
        if st.graphs is None or st.graphs.choice != c:
            st.graphs = _Graphs(c, torch.tensor(c.eos or (-1,), device=input_ids.device))
        logits = self._prefill(st, input_ids, attention_mask.to(input_ids.device), s)
        self._advance(st, st.graphs, logits)
        optimize = getattr(self.model, "_optimize_model_for_decode", None)
        with optimize() if optimize else contextlib.nullcontext():
            for i in range(1, s.max_new):
                if i % CHECK_EVERY == 0 and bool(st.done.all()):
                    break
                slot = prompt + i - 1
                if slot >= st.length:
                    self._grow(st, need)
                window = min(st.length, -(-(slot + 1) // WINDOW) * WINDOW) if st.windowed else st.length
                self._decode(st, window)
        new = int(st.ended[:batch].max())  # the longest answer: later columns are pad only
        return torch.cat([input_ids, st.out[:batch, :new]], dim=1)

    def _state_for(self, batch: int, need: int, start: int) -> _State | None:
        """The state for `batch` rows and `need` slots: the current one where it serves, else a new one
        if it fits in half the free memory, else None. A windowed state's cache starts at `start` slots
        and grows (`_grow`) when an answer runs past it; another is made at `need` slots at once."""
        import torch
        from transformers import StaticCache
        from transformers.cache_utils import StaticLayer

        from posttrainbench.evaluation.backends import GQA_SDPA

        st = self._state
        attention = self.model.config._attn_implementation
        if (
            st is not None
            and batch <= st.batch <= 2 * batch
            and (start if st.windowed else need) <= st.length
            and st.attention == attention
        ):
            return st
        probe = StaticCache(config=self.model.config, max_cache_len=LENGTH_BUCKET)  # allocates nothing
        if any(probe.is_linear):
            raise NotImplementedError("the loop has no linear-attention (recurrent) cache layers")
        windowed = attention == GQA_SDPA and all(type(layer) is StaticLayer for layer in probe.layers)
        length = bucket(start if windowed else need)
        if not fits(batch * length * self._slot_bytes(), self.model.device, freed=st.nbytes if st else 0):
            return None
        self.release()
        device = self.model.device
        long = functools.partial(torch.zeros, dtype=torch.long, device=device)
        self._state = _State(
            batch=batch, length=length, attention=attention, windowed=windowed,
            cache=StaticCache(config=self.model.config, max_cache_len=length), tokens=long(batch, 1),
            positions=long(batch, 1), slot=long(()), padding=torch.ones(batch, length, dtype=torch.bool, device=device),
            slots=torch.arange(length, device=device), step=long(1),
            done=torch.zeros(batch, dtype=torch.bool, device=device), ended=long(batch), out=long(batch, length),
            pool=torch.cuda.graph_pool_handle() if self.cuda else None,
        )  # fmt: skip
        return self._state

    def _slot_bytes(self) -> int:
        """Bytes a state takes per row and cache slot: the KV cache, the padding mask, the new tokens."""
        return kv_bytes_per_token(self.model) + 9

    def _grow(self, st: _State, need: int) -> None:
        """Double the cache of a windowed state (to at most `need` slots), keeping what it holds; raise
        _CacheFull where the larger cache would pass GROW_SHARE of the free memory. Layer by layer, so
        that beside the new cache only one old layer is held at a time."""
        import torch
        from transformers import StaticCache

        length = min(2 * st.length, bucket(need))
        nbytes = st.batch * length * self._slot_bytes()
        if not fits(nbytes, self.model.device, freed=st.nbytes, share=GROW_SHARE):
            raise _CacheFull(
                f"its KV cache cannot grow to {length} slots ({nbytes / 2**30:.1f} GiB) in the free memory"
            )
        cache = StaticCache(config=self.model.config, max_cache_len=length)
        for old, new in zip(st.cache.layers, cache.layers, strict=True):
            new.lazy_initialization(old.keys, old.values)
            new.keys[:, :, : st.length].copy_(old.keys)
            new.values[:, :, : st.length].copy_(old.values)
            new.cumulative_length.copy_(old.cumulative_length)
            old.keys = old.values = None
        padding = st.padding.new_ones(st.batch, length)
        padding[:, : st.length] = st.padding
        out = st.out.new_zeros(st.batch, length)
        out[:, : st.length] = st.out
        st.cache, st.padding, st.out, st.length = cache, padding, out, length
        st.slots = torch.arange(length, device=st.slots.device)
        if st.graphs is not None:  # they read the old tensors: dropped (once no replay runs), with their pool
            if self.cuda:
                torch.cuda.synchronize()
                st.pool = torch.cuda.graph_pool_handle()
            st.graphs.by_window.clear()

    def _prefill(self, st: _State, input_ids: torch.Tensor, mask: torch.Tensor, s: Settings) -> torch.Tensor:
        """Reset the state for this call, run the prompt through the model (as `generate`'s prefill
        does) and return its last logits."""
        import torch

        batch, prompt = input_ids.shape
        if batch < st.batch:  # dummy rows: pad tokens, unmasked, finished from the start
            extra = st.batch - batch
            input_ids = torch.cat([input_ids, input_ids.new_full((extra, prompt), s.choice.pad)])
            mask = torch.cat([mask, mask.new_ones(extra, prompt)])
        positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
        st.cache.reset()
        st.padding.fill_(True)
        st.padding[:, :prompt] = mask.bool()
        st.positions.copy_(mask.long().sum(-1, keepdim=True))
        st.slot.fill_(prompt)
        st.step.zero_()
        st.done.zero_()
        st.done[batch:] = True
        st.ended.fill_(s.max_new)
        st.ended[batch:] = 0
        # generate drops an all-ones mask (no padding) before its prefill.
        inputs = self.model.prepare_inputs_for_generation(
            input_ids, cache=st.cache, attention_mask=None if bool(mask.all()) else mask, position_ids=positions,
            use_cache=True, is_first_iteration=True, **self._logits_to_keep(),
        )  # fmt: skip
        return self.model(**inputs, return_dict=True).logits

    def _logits_to_keep(self) -> dict[str, int]:
        return {"logits_to_keep": 1} if self.model._supports_logits_to_keep() else {}

    def _decode(self, st: _State, window: int) -> None:
        """One step: replayed from its graph on CUDA, else run."""
        import torch

        if not self.cuda:
            return self._step(st, window)
        assert st.graphs is not None
        graph = st.graphs.by_window.get(window)
        if graph is not None:
            graph.replay()
            return None
        # First step at this window: run it for real on a side stream (compiling where needed, and
        # doing whatever lazy set-up must not be captured), then capture it for the next steps.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self._step(st, window)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=st.pool, capture_error_mode="thread_local"):
            self._step(st, window)
        st.graphs.by_window[window] = graph
        return None

    def _step(self, st: _State, window: int) -> None:
        import torch

        if st.windowed:
            # The mask of the window's slots, in the (batch, 1, 1, window) shape SDPA takes; its length
            # tells gqa_sdpa_attention how far into the cache to read.
            mask = (st.padding[:, :window] & (st.slots[:window] <= st.slot))[:, None, None, :]
            if self.compile:
                torch._dynamo.maybe_mark_dynamic(mask, 3)
        else:
            mask = st.padding  # generate's 2D mask over the whole static length: its mask functions apply
        inputs = self.model.prepare_inputs_for_generation(
            st.tokens, next_sequence_length=1, cache=st.cache, attention_mask=mask, position_ids=st.positions,
            use_cache=True, **self._logits_to_keep(),
        )  # fmt: skip
        logits = self._compiled()(**inputs, return_dict=True).logits
        st.positions.add_(1)
        st.slot.add_(1)
        assert st.graphs is not None
        self._advance(st, st.graphs, logits)

    def _compiled(self) -> Callable:
        import torch

        if not self.compile:
            return self.model
        if self._forward is None:
            # No mode="reduce-overhead": the loop captures whole steps as CUDA graphs itself.
            self._forward = torch.compile(self.model.forward)
        return self._forward

    def _advance(self, st: _State, g: _Graphs, logits: torch.Tensor) -> None:
        """Choose each row's next token from the last logits as generate's `_sample` does, and record
        it."""
        import torch

        c = g.choice
        scores = logits[:, -1].to(dtype=torch.float32, copy=True)
        if c.min_new and c.eos:  # MinNewTokensLengthLogitsProcessor
            if g.eos_vocab is None:
                g.eos_vocab = (torch.arange(scores.shape[-1], device=scores.device)[:, None] == g.eos).any(1)
            scores = torch.where(g.eos_vocab & (st.step < c.min_new), -math.inf, scores)
        for warper in c.warpers():
            scores = warper(None, scores)
        if c.sample:
            # torch.multinomial(probs, 1) draws exactly so, but checks its input with a host sync.
            probs = torch.nn.functional.softmax(scores, dim=-1)
            tokens = (probs / torch.empty_like(probs).exponential_(1)).argmax(-1)
        else:
            tokens = scores.argmax(-1)
        tokens = torch.where(st.done, c.pad, tokens)
        st.out.index_copy_(1, st.step, tokens[:, None])
        if c.eos:
            hit = (tokens[:, None] == g.eos).any(1) & ~st.done
            st.ended.copy_(torch.where(hit, st.step + 1, st.ended))
            st.done.logical_or_(hit)
        st.tokens.copy_(tokens[:, None])
        st.step.add_(1)


def bucket(slots: int) -> int:
    """`slots` rounded up to a multiple of LENGTH_BUCKET."""
    return -(-slots // LENGTH_BUCKET) * LENGTH_BUCKET


def use_decoding_loop(
    model: PreTrainedModel, fallback: Callable | None = None, **options: Any
) -> DecodingLoop:
    """Replace `model.generate` with the loop, handing the calls it does not take to `fallback`
    (default: the model's generate as it is now). `options`: DecodingLoop's. The loop is also
    `model.decoding_loop`."""
    loop = DecodingLoop(model, **options)
    fallback = fallback or model.generate

    @functools.wraps(fallback)
    def generate(*args, **kwargs):
        out = None if args or "input_ids" not in kwargs else loop.try_generate(**kwargs)
        return fallback(*args, **kwargs) if out is None else out

    model.generate = generate
    model.decoding_loop = loop
    return loop
