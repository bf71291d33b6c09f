"""The mount plan: what the agent may see and write, as data that any backend renders."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

from pydantic import BaseModel


class Mount(BaseModel):
    """`rw`/`ro`: bind `source` at `target`; `tmpfs`: an empty private directory at `target`
    (which also hides whatever was there)."""

    kind: Literal["rw", "ro", "tmpfs"]
    target: str
    source: str | None = None


class MountPlan(BaseModel):
    mounts: list[Mount]
    workdir: str
    env: dict[str, str]
    network: bool = True


class Sandbox(ABC):
    name: str

    @abstractmethod
    def command(self, plan: MountPlan, argv: list[str]) -> list[str]:
        """The full command line that runs `argv` under `plan`."""

    def env(self, plan: MountPlan) -> dict[str, str]:
        """The environment to start the command line with."""
        return dict(plan.env)
