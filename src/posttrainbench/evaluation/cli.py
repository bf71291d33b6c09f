"""The command line of every task's `evaluate.py`, and of the harness's final evaluation."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from posttrainbench import tasks
from posttrainbench.errors import UserError


def parser(task_name: str | None) -> argparse.ArgumentParser:
    info = tasks.get(task_name).info if task_name else None
    p = argparse.ArgumentParser(
        prog="evaluate.py" if task_name else "python -m posttrainbench.evaluation",
        description=f"Evaluate a model on {info.benchmark}." if info else "Evaluate a model on a task.",
    )
    if task_name is None:
        p.add_argument("--task", required=True, help="task name (see `ptb list tasks`)")
    p.add_argument(
        "--model-path", type=Path, default=Path("final_model"), help="model directory (default: final_model)"
    )
    p.add_argument(
        "--limit",
        type=int,
        default=info.default_limit if info else -1,
        help="number of test samples; -1 for all (default: %(default)s)",
    )
    p.add_argument(
        "--max-tokens",
        type=int,
        default=info.default_max_tokens if info else None,
        help="maximum new tokens per answer (default: the task's budget)",
    )
    p.add_argument("--json-output-file", type=Path, default=None, help="write metrics as JSON here")
    p.add_argument(
        "--templates-dir", type=Path, default=Path("templates"), help="chat templates (default: templates/)"
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=info.default_max_connections if info else None,
        help="batch size / concurrent requests (default: the task's)",
    )
    p.add_argument(
        "--gpu-memory-utilization",
        type=float,
        default=0.8,
        help="fraction of GPU memory for the inference engine (vLLM backend; ignored by hf)",
    )
    p.add_argument("--log-dir", type=Path, default=Path("logs"), help="inspect logs (default: logs/)")
    return p


def main(argv: list[str] | None = None, task: str | None = None) -> int:
    args = parser(task).parse_args(argv)
    task_name = task or args.task
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from posttrainbench.evaluation.runner import evaluate

    try:
        info = tasks.get(task_name).info
        if args.limit == 0 or args.limit < -1:
            raise UserError("--limit must be a positive number of samples, or -1 for all")
        metrics = evaluate(
            task_name,
            args.model_path,
            limit=None if args.limit == -1 else args.limit,
            max_tokens=args.max_tokens or info.default_max_tokens,
            templates_dir=args.templates_dir,
            max_connections=args.max_connections or info.default_max_connections,
            log_dir=args.log_dir,
        )
    except (UserError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    text = metrics.model_dump_json(indent=2)
    print(text)
    if args.json_output_file:
        args.json_output_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json_output_file.with_suffix(".tmp")
        tmp.write_text(text + "\n")
        tmp.replace(args.json_output_file)
    return 0
