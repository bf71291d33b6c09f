"""Base-model cards, chat templates by model family, and locating a model in the cache."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

from posttrainbench.demo import tiny_model
from posttrainbench.errors import UserError, unknown
from posttrainbench.specs import ModelCard

TEMPLATES_DIR = Path(str(files("posttrainbench.templates")))

MODELS: dict[str, ModelCard] = {
    card.name: card
    for card in [
        ModelCard(
            name="ptb-tiny",
            hub_id="posttrainbench/ptb-tiny-base",
            revision=tiny_model.build_id(),
            family="qwen3",
            built_locally=True,
            description="0.6M-parameter Qwen3 model built locally from a seed",
        ),
        ModelCard(
            name="Qwen3-1.7B-Base",
            hub_id="Qwen/Qwen3-1.7B-Base",
            revision="main",
            family="qwen3",
            instruct_twin="Qwen/Qwen3-1.7B",
        ),
        ModelCard(
            name="Qwen3-4B-Base",
            hub_id="Qwen/Qwen3-4B-Base",
            revision="main",
            family="qwen3",
            instruct_twin="Qwen/Qwen3-4B",
        ),
        ModelCard(
            name="SmolLM3-3B-Base",
            hub_id="HuggingFaceTB/SmolLM3-3B-Base",
            revision="main",
            family="smollm3",
            instruct_twin="HuggingFaceTB/SmolLM3-3B",
        ),
        ModelCard(
            name="gemma-3-4b-pt",
            hub_id="google/gemma-3-4b-pt",
            revision="main",
            family="gemma3",
            instruct_twin="google/gemma-3-4b-it",
        ),
    ]
}

# config.json `model_type` -> family; the family picks the chat template, never the path.
FAMILY_BY_MODEL_TYPE = {
    "qwen3": "qwen3",
    "smollm3": "smollm3",
    "gemma3": "gemma3",
    "gemma3_text": "gemma3",
}


def get(name: str) -> ModelCard:
    try:
        return MODELS[name]
    except KeyError:
        raise unknown("model", name, list(MODELS)) from None


def snapshot(card: ModelCard, hub_cache: Path) -> Path:
    """The model's directory in the hub cache; builds locally built models on first use."""
    if card.built_locally:
        return tiny_model.register(hub_cache, card.hub_id, card.revision)
    repo = hub_cache / ("models--" + card.hub_id.replace("/", "--"))
    ref = repo / "refs" / card.revision
    revision = ref.read_text().strip() if ref.is_file() else card.revision
    path = repo / "snapshots" / revision
    if not (path / "config.json").is_file():
        raise UserError(
            f"model {card.name} ({card.hub_id}@{card.revision}) is not in the model cache {hub_cache}; "
            f"download it there (e.g. `hf download {card.hub_id} --cache-dir {hub_cache}`) "
            "or point PTB_MODEL_CACHE at a cache that has it"
        )
    return path


def family_of(model_dir: Path) -> str:
    """The model family from `config.json` (architecture), not from the directory name."""
    config = json.loads((model_dir / "config.json").read_text())
    model_type = config.get("model_type", "")
    try:
        return FAMILY_BY_MODEL_TYPE[model_type]
    except KeyError:
        raise ValueError(
            f"{model_dir}/config.json has model_type '{model_type}'; supported: "
            + ", ".join(sorted(FAMILY_BY_MODEL_TYPE))
        ) from None


def template_file(family: str, templates_dir: Path = TEMPLATES_DIR) -> Path:
    path = templates_dir / f"{family}.jinja"
    if not path.is_file():
        raise ValueError(f"no chat template for family '{family}' in {templates_dir}")
    return path
