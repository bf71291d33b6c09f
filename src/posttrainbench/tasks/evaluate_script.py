"""The agent-facing `evaluate.py`: one text, rendered per task. It only calls the package's
evaluation, so the agent's local evaluation and the final evaluation share one implementation."""

from __future__ import annotations

from posttrainbench.specs import TaskInfo

SCRIPT = '''#!/usr/bin/env python3
"""Evaluate a model on {benchmark}, exactly as the final evaluation does (it shares this code).

Usage: python evaluate.py [--model-path final_model] [--limit {limit}] [{token_flag} {max_tokens}]
                          [--json-output-file metrics.json] [--templates-dir templates]{judge_usage}
Run `python evaluate.py --help` for every option.

Do not modify this file or templates/: the harness evaluates your final_model with its own copy,
on the full test set (--limit -1), with greedy decoding and the chat template of the model's family.{judge_note}
"""

import sys

from posttrainbench.evaluation.cli import main

if __name__ == "__main__":
    sys.exit(main(task="{task}"))
'''


def render(info: TaskInfo, benchmark: str) -> str:
    judged = info.default_judge is not None
    return SCRIPT.format(
        benchmark=benchmark,
        task=info.name,
        limit=info.default_limit or -1,
        token_flag=info.token_flag,
        max_tokens=info.default_max_tokens,
        judge_usage="\n                          [--judge-model MODEL]" if judged else "",
        judge_note=(
            f"\nAnswers are graded by a judge model ({info.default_judge} by default): every run costs"
            " judge API calls.\nInside a posttrainbench run the judge is reached through the harness's grader"
            " proxy (no API key needed;\nonly the run's grader model, within a token budget; calls are logged)."
            if judged
            else ""
        ),
    )
