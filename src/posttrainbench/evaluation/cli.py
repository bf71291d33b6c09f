"""The command line of every task's `evaluate.py`, and of the harness's final evaluation
(`python -m posttrainbench.evaluation --task T ...`): one implementation for both."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from posttrainbench import tasks
from posttrainbench.errors import UserError
from posttrainbench.evaluation.backends import BACKENDS


def parser(task_name: str | None) -> argparse.ArgumentParser:
    info = tasks.get(task_name).info if task_name else None
    p = argparse.ArgumentParser(
        prog="evaluate.py" if task_name else "python -m posttrainbench.evaluation",
        description=(
            f"Evaluate a model on {tasks.get(task_name).benchmark}." if task_name else "Evaluate a model."
        )
        + " Decoding is greedy with the task's token budget; the chat template comes from the model's"
        " family (config.json), never from its path or its own tokenizer files.",
    )
    if task_name is None:
        p.add_argument("--task", required=True, help="task name (see `ptb list tasks`)")
        p.add_argument(
            "--fewshot",
            action="store_true",
            help="the few-shot protocol for base models: the task's exemplars, sampling, plain template",
        )
    p.add_argument(
        "--model-path", type=Path, default=Path("final_model"), help="model directory (default: final_model)"
    )
    p.add_argument(
        "--limit",
        type=int,
        default=info.default_limit or -1 if info else -1,
        help="number of test samples, the first N in the task's order; -1 for all (default: %(default)s)",
    )
    flag = info.token_flag if info else "--max-tokens"
    other = "--max-new-tokens" if flag == "--max-tokens" else "--max-tokens"
    p.add_argument(
        flag,
        dest="max_tokens",
        type=int,
        default=None,
        help="maximum new tokens per answer (default: the task's budget"
        + (f", {info.default_max_tokens}" if info else "")
        + ")",
    )
    p.add_argument(other, dest="max_tokens", type=int, help=argparse.SUPPRESS)
    p.add_argument("--json-output-file", type=Path, default=None, help="write metrics.json here")
    p.add_argument(
        "--templates-dir", type=Path, default=Path("templates"), help="chat templates (default: templates/)"
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=None,
        help="batch size / concurrent requests (default: the task's"
        + (f", {info.default_max_connections}" if info else "")
        + ")",
    )
    p.add_argument(
        "--gpu-memory-utilization",
        type=float,
        default=0.8,
        help="fraction of GPU memory for the vLLM engine (default: %(default)s; the hf backend ignores it)",
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="inference backend: vllm when importable with a GPU, else hf (default: %(default)s)",
    )
    p.add_argument(
        "--backend-url", default=None, help="an existing vLLM or OpenAI-compatible server (/v1 URL)"
    )
    p.add_argument(
        "--data-dir", type=Path, default=None, help="local benchmark data (default: $PTB_DATA_DIR)"
    )
    if info is None or info.default_judge:
        p.add_argument(
            "--judge-model",
            default=None,
            help="inspect model string of the judge" + (f" (default: {info.default_judge})" if info else ""),
        )
    p.add_argument("--epochs", type=int, default=1, help="run N seeds; report mean and stderr (default: 1)")
    p.add_argument("--seed", type=int, default=0, help="first seed (default: 0)")
    p.add_argument("--log-dir", type=Path, default=Path("logs"), help="inspect logs (default: logs/)")
    return p


def main(argv: list[str] | None = None, task: str | None = None) -> int:
    args = parser(task).parse_args(argv)
    task_name = task or args.task
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from posttrainbench.evaluation.runner import EvaluationError, RunOptions, evaluate
    from posttrainbench.sandbox.grader import judge_in_sandbox

    try:
        if args.limit == 0 or args.limit < -1:
            raise UserError("--limit must be a positive number of samples, or -1 for all")
        if args.epochs < 1:
            raise UserError("--epochs must be at least 1")
        [metrics] = evaluate(
            [task_name],
            args.model_path,
            RunOptions(
                backend=args.backend,
                backend_url=args.backend_url,
                limit=None if args.limit == -1 else args.limit,
                max_tokens=args.max_tokens,
                max_connections=args.max_connections,
                gpu_memory_utilization=args.gpu_memory_utilization,
                templates_dir=args.templates_dir,
                data_dir=args.data_dir,
                judge=getattr(args, "judge_model", None) or judge_in_sandbox(),
                epochs=args.epochs,
                seed=args.seed,
                fewshot=getattr(args, "fewshot", False),
                log_dir=args.log_dir,
            ),
        )
    except (UserError, FileNotFoundError, ValueError, EvaluationError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    text = metrics.model_dump_json(indent=2)
    print(text)
    if args.json_output_file:
        write_metrics(args.json_output_file, text)
    return 0


def write_metrics(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text + "\n")
    tmp.replace(path)
