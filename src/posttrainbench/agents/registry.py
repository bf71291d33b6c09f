"""All agents known to this installation, by name: the built-in ones and those of installed
packages (the `posttrainbench.agents` entry point, see `posttrainbench.plugins`)."""

from __future__ import annotations

from posttrainbench.agents.base import Agent
from posttrainbench.agents.builtin.agents import BUILTIN
from posttrainbench.agents.cli.claude_code import ClaudeCode
from posttrainbench.agents.cli.codex import Codex
from posttrainbench.agents.cli.gemini_cli import GeminiCli
from posttrainbench.agents.cli.opencode import OpenCode
from posttrainbench.agents.script import ScriptAgent
from posttrainbench.plugins import AGENTS_GROUP, Origin, Registry, discover
from posttrainbench.traces.parsers import Parser

REGISTRY: Registry[Agent] = discover(
    AGENTS_GROUP, "agent", Agent, [*BUILTIN, ScriptAgent(), ClaudeCode(), Codex(), GeminiCli(), OpenCode()]
)
AGENTS: dict[str, Agent] = REGISTRY.found


def get(name: str) -> Agent:
    return REGISTRY.get(name)


def origin(name: str) -> Origin:
    return REGISTRY.origins[name]


def trace_parser(name: str) -> Parser | None:
    """The parser of the agent's output into trace events (None: an unknown agent, or one without)."""
    agent = AGENTS.get(name)
    return agent.trace_parser() if agent else None
