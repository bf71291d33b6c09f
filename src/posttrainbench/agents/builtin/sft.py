"""A TRL supervised fine-tuning recipe sized to the time left and to the hardware found.

Shared by the `reference` agent (trains on the task's allowed training data) and the
`cheat-testset` agent (trains on the test split, to show that cheating is caught).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

TIME_FRACTION = 0.75  # of the time left that goes to optimizer steps; the rest is load, save, slack
MIN_STEPS = 20


@dataclass(frozen=True)
class Plan:
    device: str
    batch_size: int
    max_steps: int
    seconds_per_step: float
    bf16: bool


def _hardware_batch(device: str, n_params: int) -> int:
    if device == "cuda":
        free, _ = torch.cuda.mem_get_info()
        # Full fine-tuning with AdamW costs ~16 bytes/parameter; activations take the rest.
        spare_gib = max(free - 16 * n_params, 0) / 2**30
        return int(min(64, max(4, 2 ** int(math.log2(max(spare_gib, 1)) + 2))))
    return 32


def plan(model, seconds_left: float, sample_ids: list[list[int]]) -> Plan:
    """Size batch and step count by timing real optimizer steps on this machine."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    n_params = sum(p.numel() for p in model.parameters())
    batch = _hardware_batch(device, n_params)
    model.to(device)
    length = max(len(s) for s in sample_ids)
    x = torch.randint(0, model.config.vocab_size, (batch, length), device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=0.0)
    model.train()
    timings = []
    for _ in range(3):
        t0 = time.perf_counter()
        model(input_ids=x, labels=x).loss.backward()
        opt.step()
        opt.zero_grad()
        if device == "cuda":
            torch.cuda.synchronize()
        timings.append(time.perf_counter() - t0)
    per_step = min(timings[1:]) * 1.15  # the trainer adds data collation and logging
    steps = max(MIN_STEPS, int(seconds_left * TIME_FRACTION / per_step))
    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    return Plan(device=device, batch_size=batch, max_steps=steps, seconds_per_step=per_step, bf16=bf16)


def finetune(
    model_id: str,
    examples: list[dict],
    out_dir: Path,
    deadline: float,
    epochs_cap: float | None = None,
    learning_rate: float = 1e-3,
) -> dict:
    """Fine-tune `model_id` on prompt/completion chat examples; save to `out_dir`.

    Returns the plan and training summary (also written to `out_dir/../train_log.json`).
    """
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_id)
    model = AutoModelForCausalLM.from_pretrained(model_id, dtype=torch.float32)
    texts = [
        tokenizer.apply_chat_template(e["prompt"] + e["completion"], tokenize=False) for e in examples[:64]
    ]
    p = plan(model, deadline - time.time(), [tokenizer(t)["input_ids"] for t in texts])
    steps = p.max_steps
    if epochs_cap is not None:
        steps = min(steps, max(MIN_STEPS, int(epochs_cap * len(examples) / p.batch_size)))

    class StopAtDeadline(TrainerCallback):
        """A safety net: stop early rather than be killed mid-save if the estimate was off."""

        def on_step_end(self, args, state, control, **kwargs):
            if time.time() > deadline - max(30.0, 0.2 * (deadline - started)):
                control.should_training_stop = True

    started = time.time()
    args = SFTConfig(
        output_dir=str(out_dir.parent / "checkpoints"),
        max_steps=steps,
        per_device_train_batch_size=p.batch_size,
        learning_rate=learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, steps // 20),
        weight_decay=0.0,
        logging_steps=max(1, steps // 20),
        save_strategy="no",
        report_to=[],
        bf16=p.bf16,
        use_cpu=p.device == "cpu",
        completion_only_loss=True,
        max_length=256,
        dataloader_num_workers=0,
        seed=0,
        disable_tqdm=True,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(examples),
        processing_class=tokenizer,
        callbacks=[StopAtDeadline()],
    )
    result = trainer.train()
    trainer.save_model(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    summary = {
        "plan": p.__dict__,
        "steps_planned": steps,
        "steps_done": result.global_step,
        "train_loss": result.training_loss,
        "seconds": round(time.time() - started, 1),
        "examples": len(examples),
    }
    (out_dir.parent / "train_log.json").write_text(json.dumps(summary, indent=2))
    return summary
