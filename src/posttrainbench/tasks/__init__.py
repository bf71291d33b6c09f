"""Benchmark tasks. Each task package holds its inspect Task, its agent-facing `evaluate.py`,
its `benchmark.txt` and the context files handed to the agent."""

from __future__ import annotations

from posttrainbench.errors import unknown
from posttrainbench.tasks.base import Task


def _all() -> dict[str, Task]:
    from posttrainbench.tasks.aime2025.task import AIME2025Task
    from posttrainbench.tasks.arenahardwriting.task import ArenaHardWritingTask
    from posttrainbench.tasks.arith.task import ArithTask
    from posttrainbench.tasks.bfcl.task import BFCLTask
    from posttrainbench.tasks.gpqamain.task import GPQAMainTask
    from posttrainbench.tasks.gsm8k.task import GSM8KTask
    from posttrainbench.tasks.healthbench.task import HealthBenchTask
    from posttrainbench.tasks.humaneval.task import HumanEvalTask

    found = [
        ArithTask(),
        AIME2025Task(),
        ArenaHardWritingTask(),
        BFCLTask(),
        GPQAMainTask(),
        GSM8KTask(),
        HealthBenchTask(),
        HumanEvalTask(),
    ]
    return {t.info.name: t for t in found}


def names() -> list[str]:
    return list(_all())


def get(name: str) -> Task:
    tasks = _all()
    try:
        return tasks[name]
    except KeyError:
        raise unknown("task", name, list(tasks)) from None


def all_tasks() -> list[Task]:
    return list(_all().values())
