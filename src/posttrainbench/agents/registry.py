"""All agents known to this installation, by name."""

from __future__ import annotations

from posttrainbench.agents.base import Agent
from posttrainbench.agents.builtin.agents import BUILTIN
from posttrainbench.agents.cli.claude_code import ClaudeCode
from posttrainbench.agents.cli.codex import Codex
from posttrainbench.agents.cli.gemini_cli import GeminiCli
from posttrainbench.agents.cli.opencode import OpenCode
from posttrainbench.agents.script import ScriptAgent
from posttrainbench.errors import unknown

AGENTS: dict[str, Agent] = {
    a.info.name: a for a in [*BUILTIN, ScriptAgent(), ClaudeCode(), Codex(), GeminiCli(), OpenCode()]
}


def get(name: str) -> Agent:
    try:
        return AGENTS[name]
    except KeyError:
        raise unknown("agent", name, list(AGENTS)) from None
