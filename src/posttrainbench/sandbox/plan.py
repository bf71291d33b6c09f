"""The mount plan: what the agent may see and write, as data that any backend renders.

Nothing of the host is visible unless the plan (or, for bubblewrap, the fixed list of system
directories) names it: the user's home, credential files, the harness's checkout and state, other
runs and the results store are hidden because they are never mounted.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

from pydantic import BaseModel


class Mount(BaseModel):
    """`rw`/`ro`: bind `source` at `target`; `tmpfs`: an empty directory at `target` that hides
    whatever was there; binds may go inside it, nothing else can be written there."""

    kind: Literal["rw", "ro", "tmpfs"]
    target: str
    source: str | None = None


class MountPlan(BaseModel):
    mounts: list[Mount]
    workdir: str
    env: dict[str, str]
    network: bool = True  # False: a private network namespace with loopback only
    tmp: str | None = None  # host directory that backs the sandbox's private /tmp (default: memory)
    gpus: list[int] = []  # device minor numbers (nvidia-smi indices) the sandbox may open


class Sandbox(ABC):
    name: str

    @abstractmethod
    def command(self, plan: MountPlan, argv: list[str]) -> list[str]:
        """The full command line that runs `argv` under `plan`."""

    def env(self, plan: MountPlan) -> dict[str, str]:
        """The environment to start the command line with."""
        return dict(plan.env)
