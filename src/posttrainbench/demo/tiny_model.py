"""Build `ptb-tiny`: a tiny Qwen3-architecture base model, deterministic from a seed, offline, and
its stand-in instruct twin (the base's weights moved a little in a seeded random direction, as an
instruct fine-tune would move them; same config and tokenizer).

The models are registered in a Hugging Face hub-cache layout (`hub/models--ORG--NAME/...`) so that
agents load them by name with `from_pretrained(HUB_ID)` under `HF_HUB_OFFLINE=1`, exactly as they
would load a real base model from a pre-downloaded cache.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

SEED = 1234
INSTRUCT_HUB_ID = "posttrainbench/ptb-tiny-instruct"
INSTRUCT_SEED = 4321
INSTRUCT_SHIFT = 0.07  # the twin's relative distance from the base, per tensor
VOCAB_SIZE = 512
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
ARCH = {
    "hidden_size": 128,
    "intermediate_size": 512,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 64,  # vLLM's CPU backend rejects head sizes below 32
    "max_position_embeddings": 512,
}


def build_id() -> str:
    """A 40-hex revision that changes whenever the recipe changes."""
    recipe = json.dumps({"seed": SEED, "vocab": VOCAB_SIZE, "arch": ARCH, "v": 1}, sort_keys=True)
    return hashlib.sha1(recipe.encode()).hexdigest()


def instruct_build_id() -> str:
    """The instruct twin's revision: changes with the base's recipe and with the twin's own."""
    recipe = json.dumps({"base": build_id(), "seed": INSTRUCT_SEED, "shift": INSTRUCT_SHIFT}, sort_keys=True)
    return hashlib.sha1(recipe.encode()).hexdigest()


def _corpus() -> list[str]:
    import random

    rng = random.Random(SEED)
    words = (
        "the a model answer question what is of to and in that for it with as on be this are "
        "train data learn number sum difference result user assistant system compute please "
        "tokens base small language reply short value plus minus equals"
    ).split()
    lines = []
    for _ in range(4000):
        a, b = rng.randrange(0, 1000), rng.randrange(0, 1000)
        op = rng.choice("+-")
        lines.append(f"What is {a} {op} {b}? {a + b if op == '+' else a - b}")
        lines.append(" ".join(rng.choice(words) for _ in range(rng.randrange(4, 14))).capitalize() + ".")
    return lines


def _tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # Digits become single tokens, so arithmetic is learnable by a tiny model.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    chat_template = files("posttrainbench.templates").joinpath("qwen3.jinja").read_text()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=chat_template,
        model_max_length=ARCH["max_position_embeddings"],
    )


def build(out_dir: Path) -> Path:
    """Write the model and tokenizer into `out_dir` (created; must not exist)."""
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM
    from transformers.utils import logging

    logging.disable_progress_bar()

    tokenizer = _tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config = Qwen3Config(
        vocab_size=VOCAB_SIZE,
        tie_word_embeddings=True,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        **ARCH,
    )
    torch.manual_seed(SEED)
    model = Qwen3ForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=config.pad_token_id,
    )
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_instruct(out_dir: Path, base_dir: Path) -> Path:
    """Write the instruct twin of the base model in `base_dir` into `out_dir` (created; must not exist):
    every weight tensor plus seeded Gaussian noise scaled to INSTRUCT_SHIFT times the tensor's norm."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    out_dir.mkdir()
    generator = torch.Generator().manual_seed(INSTRUCT_SEED)
    for path in sorted(base_dir.iterdir()):
        if path.suffix != ".safetensors":
            shutil.copyfile(path, out_dir / path.name)
            continue
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata()
            tensors = {}
            for name in sorted(f.keys()):
                original = f.get_tensor(name)
                weight = original.float()
                noise = torch.randn(weight.shape, generator=generator)
                noise *= INSTRUCT_SHIFT * weight.norm() / noise.norm()
                tensors[name] = (weight + noise).to(original.dtype)
        save_file(tensors, out_dir / path.name, metadata=metadata)
    return out_dir


def register(hub_cache: Path, hub_id: str, revision: str, builder: Callable[[Path], Path] = build) -> Path:
    """Place a locally built model (`builder(out_dir)`, the base by default) in hub-cache layout;
    return its snapshot directory.

    Idempotent: an existing complete snapshot is reused. The snapshot is built in a temporary
    directory and moved into place, so an interrupted build never leaves a half-written model.
    """
    repo = hub_cache / ("models--" + hub_id.replace("/", "--"))
    snapshot = repo / "snapshots" / revision
    if (snapshot / "config.json").exists():
        return snapshot
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=snapshot.parent) as tmp:
        staged = builder(Path(tmp) / "model")
        if snapshot.exists():
            shutil.rmtree(snapshot)
        staged.rename(snapshot)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    return snapshot
