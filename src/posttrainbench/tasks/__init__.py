"""Benchmark tasks. Each task package holds its inspect Task, its agent-facing `evaluate.py`,
its `benchmark.txt` and the context files handed to the agent."""

from __future__ import annotations

from posttrainbench.errors import unknown
from posttrainbench.tasks.base import Task


def _all() -> dict[str, Task]:
    from posttrainbench.tasks.arith.task import ArithTask

    return {t.info.name: t for t in [ArithTask()]}


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
