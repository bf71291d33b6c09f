"""Inference backends: how the evaluated model is served to inspect-ai.

- `hf`: transformers in this process (batched; fp32 on CPU; on a GPU bf16 and our decoding loop: a
  static KV cache, compiled decoding steps replayed as CUDA graphs, see `compiled_decoding` and
  decoding.py).
- `vllm`: a vLLM OpenAI-compatible server started for the model with our template (vLLM may live in
  its own venv: `PTB_VLLM_PYTHON`), or an existing one at `url` (key: `VLLM_API_KEY`).
- `openai`: any OpenAI-compatible server at `url` (key: `OPENAI_API_KEY`).

A server that is already running applies its own chat template: metrics.json says so. Otherwise every
backend gets the family's chat template. Decoding is greedy, except under the few-shot protocol
(`sample`), which samples; the decoding settings of a submission's generation_config.json never apply.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

from posttrainbench.errors import UserError, unknown

if TYPE_CHECKING:  # inspect-ai is imported where a model is served: bench/gpu_generate.py runs without it
    import torch
    from inspect_ai.model import Model

BackendName = Literal["auto", "hf", "vllm", "openai"]
BACKENDS: tuple[str, ...] = get_args(BackendName)


@dataclass
class Served:
    model: Model
    backend: str
    template: str  # the template file applied, or a note saying whose template applies


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def vllm_available() -> bool:
    """Whether the launcher's python imports vllm (its answer is cached for the server start)."""
    from posttrainbench.evaluation.vllm_server import default_python, probe

    try:
        probe(default_python())
    except UserError:
        return False
    return True


def choose(backend: BackendName) -> str:
    """`auto`: vllm when it is importable and a GPU is present, else hf."""
    if backend != "auto":
        return backend
    return "vllm" if cuda_available() and vllm_available() else "hf"


@contextmanager
def serve(
    backend: BackendName,
    model_path: Path,
    template: Path,
    *,
    batch_size: int,
    gpu_memory_utilization: float,
    url: str | None,
    log_dir: Path,
    sample: bool = False,
) -> Iterator[Served]:
    from inspect_ai.model import get_model

    name = choose(backend)
    if name == "hf":
        yield Served(_hf(model_path, template, batch_size, sample), "hf", template.name)
    elif name == "vllm" and url is None:
        from posttrainbench.evaluation.vllm_server import VLLMServer

        with VLLMServer(
            model_path,
            chat_template=template,
            tool_calling=True,
            gpu_memory_utilization=gpu_memory_utilization,
            log_file=log_dir / "vllm_server.log",
        ) as endpoint:
            model = get_model(
                f"vllm/{endpoint.model_name}",
                base_url=endpoint.base_url,
                api_key=endpoint.api_key.get_secret_value(),
            )
            yield Served(model, "vllm", template.name)
    elif name == "vllm":
        # An existing server keeps its own template: vLLM refuses a per-request `chat_template` unless it
        # was started with --trust-request-chat-template.
        key = os.environ.get("VLLM_API_KEY", "none")
        model = get_model(f"vllm/{_served_name(url, key)}", base_url=url, api_key=key)
        yield Served(model, "vllm", f"the chat template of the server at {url}")
    elif name == "openai":
        if url is None:
            raise UserError("--backend openai needs --backend-url (an OpenAI-compatible /v1 URL)")
        key = os.environ.get("OPENAI_API_KEY", "none")
        model = get_model(f"openai-api/ptb/{_served_name(url, key)}", base_url=url, api_key=key)
        yield Served(model, "openai", f"the chat template of the server at {url}")
    else:
        raise unknown("backend", backend, list(BACKENDS))


def _hf(model_path: Path, template: Path, batch_size: int, sample: bool) -> Model:
    import torch
    from inspect_ai.model import get_model

    cuda = cuda_available()
    model = get_model(
        "hf/local",
        model_path=str(model_path),
        chat_template=template.read_text(),
        # The template writes the special tokens (a BOS included); the tokenizer must not add them again.
        tokenizer_call_args={"add_special_tokens": False},
        do_sample=sample,
        device="cuda:0" if cuda else "cpu",
        dtype=torch.bfloat16 if cuda else torch.float32,
        batch_size=batch_size,
    )
    neutral_generation_config(model.api.model)  # type: ignore[attr-defined]
    if cuda:
        compiled_decoding(model.api.model)  # type: ignore[attr-defined]
    return model


def compiled_decoding(hf_model) -> None:
    """Decode with `decoding.DecodingLoop`: a static KV cache, the model's forward compiled (inductor)
    and each step replayed as a CUDA graph with no host sync, over a window of the cache that grows
    with the answer, and `gqa_sdpa_attention`: 41% of the decode bound at batch 32-256 on an H100,
    3.8-6.5x plain generate (bench/README.md). Its cache starts with room for 1,024 new tokens and
    doubles as answers need. A call the loop does not take (logits or hidden states asked for, stop
    strings, settings it does not reproduce, a first cache over half the free memory, or one that
    cannot grow as far as an answer runs) goes to generate with a static KV cache, so that
    transformers compiles the decoding step (inductor, replayed as CUDA graphs): 1.9x the dynamic
    cache's tokens/s at batch 256 on an H100 (bench/gpu_generate.py). A generate call whose static
    cache (batch x the longest cache so far) would take more than half the free memory keeps the
    dynamic cache, which grows only as far as the longest answer."""
    import functools

    from posttrainbench.evaluation.decoding import fits, kv_bytes_per_token, use_decoding_loop

    hf_model.set_attn_implementation(register_gqa_sdpa())
    per_token = kv_bytes_per_token(hf_model)
    generate = hf_model.generate

    @functools.wraps(generate)
    def static_generate(*args, input_ids, **kwargs):
        new = kwargs.get("max_new_tokens") or hf_model.generation_config.max_new_tokens or 0
        length = max(input_ids.shape[1] + new, getattr(hf_model, "_previous_max_cache_length", 0))
        static = fits(input_ids.shape[0] * length * per_token, hf_model.device)
        return generate(
            *args, input_ids=input_ids, cache_implementation="static" if static else None, **kwargs
        )

    use_decoding_loop(hf_model, static_generate)


def neutral_generation_config(hf_model) -> None:
    """transformers fills every generation setting a request leaves unset from the model's
    generation_config.json (repetition_penalty, top_k, no_repeat_ngram_size, ...). Replace it with the
    library defaults, keeping only the special-token ids that say when an answer ends (what vLLM's
    `--generation-config vllm` keeps too)."""
    from transformers import GenerationConfig

    loaded = hf_model.generation_config
    keep = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")
    hf_model.generation_config = GenerationConfig(**{k: getattr(loaded, k, None) for k in keep})


GQA_SDPA = "ptb_gqa_sdpa"


def gqa_sdpa_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """transformers' SDPA attention, except that a one-token decoding step runs on the key/value heads
    also under torch.compile: the query heads of each group become its query rows, so the KV cache is
    read once instead of being copied `groups` times by repeat_kv. (transformers packs so only outside
    compile, and with a static cache's mask SDPA's own enable_gqa falls back to the math kernel.)

    A 4D mask shorter than the keys is the window of `decoding.DecodingLoop`: the cache's first
    mask-length slots hold every token so far, the rest is not read."""
    import torch.nn.functional as F
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if attention_mask is not None and attention_mask.ndim == 4:
        # A no-op but for the loop's window; not a comparison, so that one compiled code serves every window.
        key, value = key[:, :, : attention_mask.shape[-1]], value[:, :, : attention_mask.shape[-1]]
    groups = getattr(module, "num_key_value_groups", 1)
    if query.shape[2] != 1 or groups == 1 or kwargs.get("position_bias") is not None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    b, h, _, d = query.shape
    # Head i is query row i % groups of key/value head i // groups, as repeat_kv orders them. A mask
    # of shape (b, 1, 1, kv) broadcasts over the rows.
    out = F.scaled_dot_product_attention(
        query.reshape(b, h // groups, groups, d), key, value, attn_mask=attention_mask, dropout_p=dropout,
        scale=scaling,
    )  # fmt: skip
    return out.reshape(b, 1, h, value.shape[-1]), None


def register_gqa_sdpa() -> str:
    """Register `gqa_sdpa_attention` (with SDPA's masks) with transformers; returns its name."""
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import sdpa_mask

    AttentionInterface.register(GQA_SDPA, gqa_sdpa_attention)
    AttentionMaskInterface.register(GQA_SDPA, sdpa_mask)
    return GQA_SDPA


def _served_name(url: str, api_key: str) -> str:
    """The first model an OpenAI-compatible server lists."""
    import json
    import urllib.request

    request = urllib.request.Request(
        url.rstrip("/") + "/models", headers={"Authorization": f"Bearer {api_key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            listing = json.load(r)
        return listing["data"][0]["id"]
    except Exception as e:
        raise UserError(f"could not list the models served at {url}: {e}") from None
