"""What a built-in agent process receives from the harness, read from its environment.

The same variables are given to every agent (see `posttrainbench.agents.base.agent_environment`):
the prompt, the base model's hub id, the task, the deadline and the number of GPUs.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AgentInputs:
    workspace: Path
    model: str
    task: str
    deadline: float
    gpus: int
    config: str

    @classmethod
    def from_env(cls) -> AgentInputs:
        return cls(
            workspace=Path.cwd(),
            model=os.environ["PTB_MODEL"],
            task=os.environ["PTB_TASK"],
            deadline=float(os.environ["PTB_DEADLINE"]),
            gpus=int(os.environ.get("NUM_GPUS", "0")),
            config=os.environ.get("AGENT_CONFIG", ""),
        )

    def seconds_left(self) -> float:
        return self.deadline - time.time()
