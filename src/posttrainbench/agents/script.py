"""`script`: any executable as an agent. `--agent-config` is the executable's path; it receives the
prompt, model, task, deadline and GPUs through the environment (see `posttrainbench.agents.base`)."""

from __future__ import annotations

import os
from pathlib import Path

from posttrainbench.agents.base import Agent, AgentContext, AgentStartError
from posttrainbench.specs import AgentInfo


class ScriptAgent(Agent):
    info = AgentInfo(
        name="script",
        kind="script",
        description="runs the executable given as --agent-config (environment contract: PROMPT, PTB_MODEL, ...)",
    )

    def _path(self, ctx: AgentContext) -> Path:
        return Path(ctx.config).expanduser().resolve()

    def preflight(self, ctx: AgentContext) -> None:
        if not ctx.config:
            raise AgentStartError("the script agent needs --agent-config PATH_TO_EXECUTABLE")
        path = self._path(ctx)
        if not path.is_file():
            raise AgentStartError(f"agent script {path} does not exist")
        if not os.access(path, os.X_OK):
            raise AgentStartError(f"agent script {path} is not executable (chmod +x)")

    def command(self, ctx: AgentContext) -> list[str]:
        return [str(self._path(ctx))]

    def readonly_paths(self, ctx: AgentContext) -> list[Path]:
        return [self._path(ctx)]
