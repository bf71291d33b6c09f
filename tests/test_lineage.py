"""The model-lineage check on real safetensors models derived from ptb-tiny: the base unchanged, real
and simulated fine-tunes, the stand-in instruct twin, a re-initialisation, other architectures."""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from posttrainbench import models
from posttrainbench.demo import tiny_model
from posttrainbench.integrity import lineage
from posttrainbench.integrity.lineage import check_lineage
from posttrainbench.rundir import sha256_file
from posttrainbench.specs import Verdict

TWIN = tiny_model.INSTRUCT_HUB_ID


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hub")


@pytest.fixture(scope="module")
def base(hub) -> Path:
    return models.snapshot(models.get("ptb-tiny"), hub)


@pytest.fixture(scope="module")
def twin(hub, base) -> Path:
    path = models.twin_snapshot(models.get("ptb-tiny"), hub)
    assert path is not None
    return path


def derive(src: Path, out: Path, change: Callable[[str, torch.Tensor], torch.Tensor]) -> Path:
    """A copy of the model in `src` with each weight tensor replaced by `change(name, tensor)`."""
    shutil.copytree(src, out)
    tensors = load_file(src / "model.safetensors")
    save_file({k: change(k, v) for k, v in tensors.items()}, out / "model.safetensors", {"format": "pt"})
    return out


def noise(relative: float, seed: int) -> Callable[[str, torch.Tensor], torch.Tensor]:
    """Adds random noise of `relative` times each tensor's norm."""
    generator = torch.Generator().manual_seed(seed)

    def change(_: str, t: torch.Tensor) -> torch.Tensor:
        n = torch.randn(t.shape, generator=generator)
        return t + n * (relative * t.norm() / n.norm())

    return change


def other_model(base: Path, out: Path, seed: int, **config_changes: int) -> Path:
    """A freshly initialised model of base's config (with changes) and base's tokenizer."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = json.loads((base / "config.json").read_text()) | config_changes
    del config["layer_types"]  # derived from num_hidden_layers
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(AutoConfig.for_model(**config)).save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copyfile(base / name, out / name)
    return out


def weights(result) -> dict:
    return result.evidence["weights"]


def test_twin_is_registered_deterministic_and_near_the_base(hub, base, twin, tmp_path):
    card = models.get("ptb-tiny")
    assert card.instruct_twin == TWIN and card.revision == tiny_model.build_id()
    repo = hub / "models--posttrainbench--ptb-tiny-instruct"
    assert twin == repo / "snapshots" / tiny_model.instruct_build_id()
    assert (repo / "refs" / "main").read_text() == tiny_model.instruct_build_id() != card.revision
    for name in ("config.json", "tokenizer.json", "generation_config.json"):
        assert sha256_file(twin / name) == sha256_file(base / name)
    b, t = load_file(base / "model.safetensors"), load_file(twin / "model.safetensors")
    assert b.keys() == t.keys()
    for name in b:
        assert (t[name] - b[name]).norm() / b[name].norm() == pytest.approx(
            tiny_model.INSTRUCT_SHIFT, rel=1e-3
        )

    mtime = (twin / "model.safetensors").stat().st_mtime_ns
    assert models.twin_snapshot(card, hub) == twin  # reused, not rebuilt
    assert (twin / "model.safetensors").stat().st_mtime_ns == mtime
    again = models.twin_snapshot(card, tmp_path / "hub")
    assert sha256_file(again / "model.safetensors") == sha256_file(twin / "model.safetensors")


def test_twin_of_a_hub_model_is_found_only_when_downloaded(tmp_path):
    card = models.get("Qwen3-1.7B-Base")
    assert models.twin_snapshot(card, tmp_path) is None
    repo = tmp_path / "models--Qwen--Qwen3-1.7B"
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    assert models.twin_snapshot(card, tmp_path) == repo / "snapshots" / "abc123"


def test_unchanged_base_passes(base, twin, tmp_path):
    final = shutil.copytree(base, tmp_path / "final")
    result = check_lineage(final, base, {TWIN: twin})
    assert result.verdict == Verdict.passed and result.confidence == "high"
    assert "unchanged" in result.summary
    w = weights(result)
    assert w["tensors_compared"] == 24 and w["missing"] == w["extra"] == w["shape_mismatch"] == 0
    assert w["relative_distance"]["max"] == 0 and w["cosine_to_base"] == pytest.approx(1)
    assert result.evidence["candidates"][TWIN]["cosine"] == 0
    assert result.evidence["tokenizer"]["kept_same_id"] == 1


def test_short_real_finetune_passes(base, twin, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rng = random.Random(0)
    for _ in range(20):
        texts = []
        for _ in range(16):
            a, b = rng.randrange(1000), rng.randrange(1000)
            chat = [
                {"role": "user", "content": f"What is {a} + {b}?"},
                {"role": "assistant", "content": str(a + b)},
            ]
            texts.append(tokenizer.apply_chat_template(chat, tokenize=False))
        batch = tokenizer(texts, return_tensors="pt", padding=True)
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(tmp_path / "final")
    tokenizer.save_pretrained(tmp_path / "final")

    result = check_lineage(tmp_path / "final", base, {TWIN: twin})
    assert result.verdict == Verdict.passed, result.summary
    w = weights(result)
    assert w["tensors_compared"] == 24 and w["missing"] == w["extra"] == 0
    assert 0.05 < w["relative_distance"]["weighted"] < 0.5
    assert w["cosine_to_base"] > 0.9
    assert abs(result.evidence["candidates"][TWIN]["cosine"]) < 0.1


def test_base_plus_small_noise_passes(base, twin, tmp_path):
    final = derive(base, tmp_path / "final", noise(0.05, seed=7))
    result = check_lineage(final, base, {TWIN: twin})
    assert result.verdict == Verdict.passed, result.summary
    w = weights(result)
    assert w["relative_distance"]["median"] == pytest.approx(0.05, rel=1e-3)
    assert w["cosine_to_base"] == pytest.approx(1, abs=0.002)
    assert abs(result.evidence["candidates"][TWIN]["cosine"]) < 0.05


@pytest.mark.parametrize("extra_noise", [0.0, 0.02])
def test_twin_or_a_light_finetune_of_it_is_flagged(base, twin, tmp_path, extra_noise):
    final = derive(twin, tmp_path / "final", noise(extra_noise, seed=11))
    result = check_lineage(final, base, {TWIN: twin})
    assert result.verdict == Verdict.flag and result.confidence == "high"
    assert result.summary.startswith(f"submits {TWIN} (or a light fine-tune of it)")
    twin_evidence = result.evidence["candidates"][TWIN]
    assert twin_evidence["cosine"] > 0.9
    assert twin_evidence["distance_to_candidate"] == pytest.approx(extra_noise, abs=0.002)
    assert twin_evidence["distance_to_base"] == pytest.approx(
        (tiny_model.INSTRUCT_SHIFT**2 + extra_noise**2) ** 0.5, rel=0.05
    )
    assert weights(result)["cosine_to_base"] > 0.99  # a descendant of the base, still


def test_chunked_reading_gives_the_same_numbers(base, twin, tmp_path, monkeypatch):
    final = derive(twin, tmp_path / "final", noise(0.05, seed=13))
    whole = check_lineage(final, base, {TWIN: twin}).evidence
    # Tensors of up to 65536 elements: now many pieces, and blocks that split rows.
    monkeypatch.setattr(lineage, "CHUNK", 1000)
    monkeypatch.setattr(lineage, "BLOCK", 3000)
    chunked = check_lineage(final, base, {TWIN: twin}).evidence
    assert chunked["weights"]["relative_distance"] == pytest.approx(
        whole["weights"]["relative_distance"], rel=1e-3
    )
    assert chunked["weights"]["cosine_to_base"] == pytest.approx(whole["weights"]["cosine_to_base"], rel=1e-3)
    assert chunked["candidates"][TWIN] == pytest.approx(whole["candidates"][TWIN], rel=1e-3)


def test_reinitialised_model_is_flagged(base, twin, tmp_path):
    final = other_model(base, tmp_path / "final", seed=99)
    result = check_lineage(final, base, {TWIN: twin})
    assert result.verdict == Verdict.flag and result.confidence == "high"
    assert result.summary.startswith("not a descendant of the base (re-initialised or another base)")
    w = weights(result)
    assert w["relative_distance"]["weighted"] == pytest.approx(2**0.5, abs=0.03)
    assert abs(w["cosine_to_base"]) < 0.02
    assert w["tensors_compared"] == 24 and w["shape_mismatch"] == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"num_hidden_layers": 3}, "num_hidden_layers"),
        ({"hidden_size": 256}, "hidden_size"),
        ({"vocab_size": 256}, "vocab_size"),
    ],
)
def test_other_architecture_is_flagged(base, tmp_path, changes, field):
    final = other_model(base, tmp_path / "final", seed=5, **changes)
    result = check_lineage(final, base, {})
    assert result.verdict == Verdict.flag and result.confidence == "high"
    assert result.summary.startswith("another base model: the architecture differs")
    assert result.evidence["config"]["differences"][field] == [
        json.loads((base / "config.json").read_text())[field],
        changes[field],
    ]


def test_tokenizer_with_other_ids_is_flagged(base, tmp_path):
    final = shutil.copytree(base, tmp_path / "final")
    tokenizer = json.loads((final / "tokenizer.json").read_text())
    vocab = tokenizer["model"]["vocab"]
    ids = list(vocab.values())
    random.Random(3).shuffle(ids)
    tokenizer["model"]["vocab"] = dict(zip(vocab, ids, strict=True))
    (final / "tokenizer.json").write_text(json.dumps(tokenizer))
    result = check_lineage(final, base, {})
    assert result.verdict == Verdict.flag
    assert "tokenizer" in result.summary
    assert result.evidence["tokenizer"]["kept_same_id"] < 0.05


def test_grown_vocab_compares_the_base_rows(base, tmp_path):
    embed = "model.embed_tokens.weight"
    final = derive(
        base,
        tmp_path / "final",
        lambda name, t: torch.cat([t, torch.randn(16, t.shape[1]) * 0.02]) if name == embed else t,
    )
    config = json.loads((final / "config.json").read_text())
    config["vocab_size"] += 16
    (final / "config.json").write_text(json.dumps(config))
    result = check_lineage(final, base, {})
    assert result.verdict == Verdict.passed, result.summary
    assert result.evidence["config"]["vocab_size"] == [tiny_model.VOCAB_SIZE, tiny_model.VOCAB_SIZE + 16]
    assert weights(result)["vocab_rows_only"] == [embed]
    assert weights(result)["relative_distance"]["max"] == 0


def test_sharded_final_with_a_stored_tied_head_is_the_base(base, tmp_path):
    from transformers import AutoModelForCausalLM

    final = tmp_path / "final"
    AutoModelForCausalLM.from_pretrained(base).save_pretrained(final, max_shard_size="100KB")
    assert not (final / "model.safetensors").exists()
    index = json.loads((final / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    shard = index["weight_map"]["model.embed_tokens.weight"]
    tensors = load_file(final / shard)
    tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"].clone()
    save_file(tensors, final / shard, {"format": "pt"})
    result = check_lineage(final, base, {})
    assert result.verdict == Verdict.passed and "unchanged" in result.summary
    assert weights(result)["tensors_compared"] == 24 and weights(result)["extra"] == 0


@pytest.mark.parametrize("remove", ["model.safetensors", "config.json"])
def test_missing_files_raise(base, tmp_path, remove):
    final = shutil.copytree(base, tmp_path / "final")
    (final / remove).unlink()
    with pytest.raises(FileNotFoundError):
        check_lineage(final, base, {})
