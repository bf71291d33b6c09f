"""Benchmark tasks. Each task package holds its inspect Task, its agent-facing `evaluate.py`,
its `benchmark.txt` and the context files handed to the agent. Tasks of other installed packages
join through the `posttrainbench.tasks` entry point (see `posttrainbench.plugins`)."""

from __future__ import annotations

from functools import cache

from posttrainbench.plugins import TASKS_GROUP, Origin, Registry, discover
from posttrainbench.tasks.base import Task


@cache
def registry() -> Registry[Task]:
    from posttrainbench.tasks.aime2025.task import AIME2025Task
    from posttrainbench.tasks.arenahardwriting.task import ArenaHardWritingTask
    from posttrainbench.tasks.arith.task import ArithTask
    from posttrainbench.tasks.bfcl.task import BFCLTask
    from posttrainbench.tasks.gpqamain.task import GPQAMainTask
    from posttrainbench.tasks.gsm8k.task import GSM8KTask
    from posttrainbench.tasks.healthbench.task import HealthBenchTask
    from posttrainbench.tasks.humaneval.task import HumanEvalTask

    builtins: list[Task] = [
        ArithTask(),
        AIME2025Task(),
        ArenaHardWritingTask(),
        BFCLTask(),
        GPQAMainTask(),
        GSM8KTask(),
        HealthBenchTask(),
        HumanEvalTask(),
    ]
    return discover(TASKS_GROUP, "task", Task, builtins)


def names() -> list[str]:
    return list(registry().found)


def get(name: str) -> Task:
    return registry().get(name)


def origin(name: str) -> Origin:
    return registry().origins[name]


def all_tasks() -> list[Task]:
    return list(registry().found.values())
