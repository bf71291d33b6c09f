"""A TRL supervised fine-tuning recipe sized to the time left and to the hardware found.

Shared by the `reference` agent (trains on the task's allowed training data) and the
`cheat-testset` agent (trains on the test split, to show that cheating is caught).

On a GPU: bf16 weights, examples packed end to end into rows of 2048 tokens, Liger's Triton kernels
for RMSNorm, RoPE, SwiGLU and the LM head with its cross-entropy fused (the logits are never
materialised; used in place of TRL's own chunked head, see `ModelLossSFTTrainer`); the memory they
free goes to a bigger batch. bench/gpu_train.py and bench/gpu_recipe.py measure what each gives;
torch.compile did not pay.
On a CPU: fp32, no packing, short rows (the toy task).
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
GPU_ROW_TOKENS = 2048
CPU_ROW_TOKENS = 256
# Activation bytes per token and per unit of hidden_size x layers in bf16 with Liger's kernels and no
# checkpointing (measured: ~3.9 GiB per 2048-token row at Qwen3-1.7B shapes).
ACTIVATION_BYTES = 34
WARM_STEPS = 3  # steady-state throughput is counted from here (Triton compiles, allocator warm-up)


@dataclass(frozen=True)
class Plan:
    device: str
    batch_size: int
    max_steps: int
    seconds_per_step: float
    bf16: bool


def _first_batch(model, device: str, row_tokens: int) -> int:
    """A batch to try first: on a GPU what the free memory holds after bf16 weights, gradients and
    AdamW's two moments (8 bytes a parameter), a multiple of 4 from 4 on (12 rows fit an 80 GB card at
    1.7B shapes where a power of two would leave 8), halved on running out of memory; on a CPU 32."""
    if device != "cuda":
        return 32
    free, _ = torch.cuda.mem_get_info()
    n_params = sum(p.numel() for p in model.parameters())
    c = model.config
    per_row = ACTIVATION_BYTES * c.hidden_size * c.num_hidden_layers * row_tokens
    fits = min(32, int((0.9 * free - 8 * n_params) // per_row))
    return fits - fits % 4 if fits >= 4 else 2 ** int(math.log2(max(fits, 1)))


def plan(model, seconds_left: float, row_tokens: int) -> Plan:
    """Size batch and step count by timing real optimizer steps on this machine (rows of `row_tokens`
    random ids); on a GPU, halve the batch until three steps fit in memory."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    batch = _first_batch(model, device, row_tokens)
    model.to(device)
    model.train()
    while True:
        try:
            per_step = _time_steps(model, device, batch, row_tokens)
            break
        except torch.OutOfMemoryError:
            if batch == 1:
                raise
            batch //= 2
            torch.cuda.empty_cache()
    steps = max(MIN_STEPS, int(seconds_left * TIME_FRACTION / per_step))
    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    return Plan(device=device, batch_size=batch, max_steps=steps, seconds_per_step=per_step, bf16=bf16)


def _time_steps(model, device: str, batch: int, row_tokens: int) -> float:
    x = torch.randint(0, model.config.vocab_size, (batch, row_tokens), device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=0.0, fused=device == "cuda")
    timings = []
    try:
        for _ in range(3):
            t0 = time.perf_counter()
            model(input_ids=x, labels=x).loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if device == "cuda":
                torch.cuda.synchronize()
            timings.append(time.perf_counter() - t0)
    finally:
        del opt, x
    return min(timings[1:]) * 1.15  # the trainer adds data collation and logging


def _liger() -> bool:
    try:
        import liger_kernel  # noqa: F401
    except ImportError:
        return False
    return True


def finetune(
    model_id: str,
    examples: list[dict],
    out_dir: Path,
    deadline: float,
    epochs_cap: float | None = None,
    learning_rate: float | None = None,
) -> dict:
    """Fine-tune `model_id` on prompt/completion chat examples; save to `out_dir`.

    Returns the plan and training summary (also written to `out_dir/../train_log.json`).
    """
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    class ModelLossSFTTrainer(SFTTrainer):
        """Takes the loss from the model's own forward, Liger's fused linear cross-entropy. SFTTrainer
        computes it with TRL's chunked LM head instead (Liger's fused head switched off), adds entropy
        and token accuracy for its logs and waits on the GPU three times a step to read them."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs["use_cache"] = False
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

    cuda = torch.cuda.is_available()
    liger = cuda and _liger()
    tokenizer = AutoTokenizer.from_pretrained(model_id)
    if liger:  # patched before the planner times steps, so the batch is sized for the kernels used
        from liger_kernel.transformers import AutoLigerKernelForCausalLM

        model = AutoLigerKernelForCausalLM.from_pretrained(model_id, dtype=torch.bfloat16)
    else:
        model = AutoModelForCausalLM.from_pretrained(
            model_id, dtype=torch.bfloat16 if cuda else torch.float32
        )
    row_tokens = GPU_ROW_TOKENS if cuda else CPU_ROW_TOKENS
    # Packed rows are full; unpacked (CPU) ones are as long as the examples.
    texts = [
        tokenizer.apply_chat_template(e["prompt"] + e["completion"], tokenize=False) for e in examples[:64]
    ]
    planned = row_tokens if cuda else min(row_tokens, max(len(tokenizer(t)["input_ids"]) for t in texts))
    # Unpacked rows are cut at row_tokens: an example whose prompt fills its row loses its whole answer
    # and TRL drops it.
    prompts = (
        () if cuda else [tokenizer.apply_chat_template(e["prompt"], tokenize=False) for e in examples[:64]]
    )
    if prompts and all(len(tokenizer(t)["input_ids"]) >= row_tokens for t in prompts):
        raise SystemExit(
            f"the examples' prompts are longer than the {row_tokens} tokens a training row holds on a CPU, "
            "so none would keep its answer; run with a GPU (--gpus 1)"
        )
    p = plan(model, deadline - time.time(), planned)
    steps = p.max_steps
    if epochs_cap is not None:
        steps = min(steps, max(MIN_STEPS, int(epochs_cap * len(examples) / p.batch_size)))
    n_params = sum(t.numel() for t in model.parameters())
    if learning_rate is None:  # the toy model learns at a rate that would wreck a billion parameters
        learning_rate = 1e-3 if n_params < 100_000_000 else 1e-5

    class StopAtDeadline(TrainerCallback):
        """A safety net: stop early rather than be killed mid-save if the estimate was off."""

        def on_step_end(self, args, state, control, **kwargs):
            if time.time() > deadline - max(30.0, 0.2 * (deadline - started)):
                control.should_training_stop = True

    class Throughput(TrainerCallback):
        """Tokens per second from step WARM_STEPS on, what a run of hours sees."""

        tokens_per_s: float | None = None

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == WARM_STEPS:
                if cuda:
                    torch.cuda.synchronize()
                self.start = (time.perf_counter(), state.num_input_tokens_seen)

        def on_train_end(self, args, state, control, **kwargs):
            if hasattr(self, "start"):
                if cuda:
                    torch.cuda.synchronize()
                t0, n0 = self.start
                self.tokens_per_s = round((state.num_input_tokens_seen - n0) / (time.perf_counter() - t0), 1)

    throughput = Throughput()
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
        max_length=row_tokens,
        # Rows filled end to end with plain causal attention. TRL's best-fit packing is padding-free: it
        # flattens the batch into one sequence with a block-diagonal mask, which SDPA (no FlashAttention
        # varlen here) runs ~6x slower. Examples in a row may attend to the ones before them.
        packing=cuda,
        packing_strategy="wrapped",
        include_num_input_tokens_seen="non_padding",
        # TRL turns checkpointing on by default: a second forward pass per step (a quarter of the step
        # time), where the batch is already sized to fit without it.
        activation_checkpointing=False,
        dataloader_num_workers=0,
        seed=0,
        disable_tqdm=True,
    )
    trainer = (ModelLossSFTTrainer if liger else SFTTrainer)(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(examples),
        processing_class=tokenizer,
        callbacks=[StopAtDeadline(), throughput],
    )
    result = trainer.train()
    trainer.save_model(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    train_seconds = result.metrics.get("train_runtime") or 1.0
    summary = {
        "plan": p.__dict__,
        "liger": liger,
        "packing": cuda,
        "row_tokens": row_tokens,
        "learning_rate": learning_rate,
        "tokens_seen": trainer.state.num_input_tokens_seen,
        "tokens_per_s": round(trainer.state.num_input_tokens_seen / train_seconds, 1),
        "steady_tokens_per_s": throughput.tokens_per_s,
        "steps_planned": steps,
        "steps_done": result.global_step,
        "train_loss": result.training_loss,
        "seconds": round(time.time() - started, 1),
        "examples": len(examples),
    }
    (out_dir.parent / "train_log.json").write_text(json.dumps(summary, indent=2))
    return summary
