"""Base-model cards, chat templates by model family, and locating a model in the cache."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

from posttrainbench import settings
from posttrainbench.demo import tiny_model
from posttrainbench.errors import UserError, unknown
from posttrainbench.specs import ModelCard

TEMPLATES_DIR = Path(str(files("posttrainbench.templates")))
# templates/base.jinja: no chat format, for base models under the few-shot protocol, whatever the family.
PLAIN_TEMPLATE = "base"

MODELS: dict[str, ModelCard] = {
    card.name: card
    for card in [
        ModelCard(
            name="ptb-tiny",
            hub_id="posttrainbench/ptb-tiny-base",
            revision=tiny_model.build_id(),
            family="qwen3",
            instruct_twin=tiny_model.INSTRUCT_HUB_ID,
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


def _cached(hub_id: str, revision: str, hub_cache: Path) -> Path | None:
    """A downloaded model's snapshot directory (`revision` a branch, tag or commit), if complete."""
    repo = hub_cache / ("models--" + hub_id.replace("/", "--"))
    ref = repo / "refs" / revision
    path = repo / "snapshots" / (ref.read_text().strip() if ref.is_file() else revision)
    return path if (path / "config.json").is_file() else None


def snapshot(card: ModelCard, hub_cache: Path) -> Path:
    """The model's directory in the hub cache; builds locally built models on first use."""
    if card.built_locally:
        return tiny_model.register(hub_cache, card.hub_id, card.revision)
    path = _cached(card.hub_id, card.revision, hub_cache)
    if path is None:
        raise UserError(
            f"model {card.name} ({card.hub_id}@{card.revision}) is not in the model cache {hub_cache}; "
            f"download it there (`ptb cache pull --models {card.name}`) "
            "or point PTB_MODEL_CACHE at a cache that has it"
        )
    return path


def twin_snapshot(card: ModelCard, hub_cache: Path) -> Path | None:
    """The instruct twin's directory: in the twin cache (`settings.twin_cache()`), else in the hub cache
    (where locally built models build theirs on first use); None when the model has no twin or its
    twin was not downloaded."""
    if card.instruct_twin is None:
        return None
    if card.built_locally:
        base = snapshot(card, hub_cache)
        return tiny_model.register(
            hub_cache,
            card.instruct_twin,
            tiny_model.instruct_build_id(),
            lambda out_dir: tiny_model.build_instruct(out_dir, base),
        )
    revision = card.instruct_revision or "main"
    return _cached(card.instruct_twin, revision, settings.twin_cache()) or _cached(
        card.instruct_twin, revision, hub_cache
    )


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
