"""The built-in agents as catalog entries: each runs one module of this package in the sandbox."""

from __future__ import annotations

import sys

from posttrainbench.agents.base import Agent, AgentContext
from posttrainbench.specs import AgentInfo


class BuiltinAgent(Agent):
    def __init__(self, name: str, module: str, description: str):
        self.info = AgentInfo(name=name, kind="builtin", description=description)
        self.module = module

    def command(self, ctx: AgentContext) -> list[str]:
        return [sys.executable, "-m", f"posttrainbench.agents.builtin.{self.module}"]


BUILTIN = [
    BuiltinAgent("noop", "noop", "submits the base model unchanged (the zero-shot baseline)"),
    BuiltinAgent(
        "reference",
        "reference",
        "TRL SFT on the task's allowed training data, sized to the budget and hardware",
    ),
    BuiltinAgent(
        "cheat-testset",
        "cheat_testset",
        "planted cheat: fine-tunes on the test split (shows that cheating is caught)",
    ),
]
