"""The agent interface and the environment every agent receives.

Contract (the same for every agent, built-in or not): the working directory is the workspace and
these environment variables are set:
  PROMPT        the full task prompt (also in the run directory's prompt.txt)
  AGENT_CONFIG  the agent configuration string (e.g. a model name), may be empty
  PTB_MODEL     the base model's hub id, loadable with from_pretrained (the cache is HF_HUB_CACHE)
  PTB_TASK      the task name
  PTB_DEADLINE  the deadline as Unix seconds (timer.sh prints the time left)
  NUM_GPUS      the number of GPUs allotted (CUDA_VISIBLE_DEVICES lists them)
plus what the agent itself adds (`Agent.environment`: its own CLI's credential and settings) and
nothing else of the harness's environment: grader and judge keys never enter the sandbox.
"""

from __future__ import annotations

import os
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from posttrainbench.sandbox.plan import Mount
from posttrainbench.specs import AgentInfo, ModelCard
from posttrainbench.traces.parsers import Parser

Evaluation = Literal["standard", "fewshot"]


class AgentStartError(Exception):
    """The agent cannot be started (missing executable, bad configuration)."""


@dataclass(frozen=True)
class AgentContext:
    workspace: Path
    home: Path
    prompt: str
    model: ModelCard
    task: str
    deadline: float
    gpus: int
    config: str


class Agent(ABC):
    info: AgentInfo
    # Environment variables passed through from the harness (the agent's own API key, say).
    credentials: tuple[str, ...] = ()
    # Hosts the agent needs under `--network allowlist` (its model API, say).
    network_hosts: tuple[str, ...] = ()
    # Whether the agent can continue its session (`resume_command`), for --continue-until-deadline.
    resumable: bool = False
    # Whether the agent sees the instruct twins' cache (read-only): only the instruct baseline, which
    # submits the twin; to every other agent the twin is off limits.
    needs_twin: bool = False
    # How the run's final_model is evaluated: the standard protocol, or the few-shot protocol for base
    # models (exemplars, sampling, plain template) of the few-shot baseline. The baseline it is compared
    # with stays the zero-shot one.
    evaluation: Evaluation = "standard"

    @abstractmethod
    def command(self, ctx: AgentContext) -> list[str]:
        """The agent's command line, run with the workspace as working directory."""

    def resume_command(self, ctx: AgentContext, session_id: str | None, message: str) -> list[str]:
        """The command line that continues the agent's session with `message` (resumable agents)."""
        raise NotImplementedError(f"{self.info.name} cannot resume a session")

    def trace_parser(self) -> Parser | None:
        """What turns the agent's output (output.log lines) into trace events (agent/trace.jsonl);
        None: the run keeps the raw log only."""
        return None

    def preflight(self, ctx: AgentContext) -> None:
        """Raise AgentStartError when the agent cannot start; nothing is launched then."""
        return None

    def prepare(self, ctx: AgentContext) -> None:
        """Write what the agent needs in its HOME (configuration files) before it starts."""
        return None

    def setup(self, ctx: AgentContext) -> dict:
        """What run.json records of the agent's configuration (never a secret)."""
        return {}

    def environment(self, ctx: AgentContext) -> dict[str, str]:
        """Variables the agent adds to the common environment: by default its credentials, passed
        through from the harness's environment."""
        return {k: os.environ[k] for k in self.credentials if k in os.environ}

    def path_entries(self) -> list[str]:
        """Directories put first on the agent's PATH."""
        return []

    def mounts(self, ctx: AgentContext) -> list[Mount]:
        """What outside the workspace the agent needs to see: by default `readonly_paths`."""
        return [Mount(kind="ro", source=str(p), target=str(p)) for p in self.readonly_paths(ctx)]

    def readonly_paths(self, ctx: AgentContext) -> list[Path]:
        """Files or directories outside the workspace the agent needs to see (read-only)."""
        return []


def agent_environment(ctx: AgentContext, hub_cache: Path, offline: bool, agent: Agent) -> dict[str, str]:
    """The whole environment of the agent: built from an allowlist, nothing inherited but what the
    agent itself adds (`Agent.environment`)."""
    python_bin = str(Path(sys.executable).parent)
    env = {
        "PATH": ":".join([*agent.path_entries(), python_bin, "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(ctx.home),
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
        "PYTHONNOUSERSITE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PROMPT": ctx.prompt,
        "AGENT_CONFIG": ctx.config,
        "PTB_MODEL": ctx.model.hub_id,
        "PTB_TASK": ctx.task,
        "PTB_DEADLINE": f"{ctx.deadline:.0f}",
        "NUM_GPUS": str(ctx.gpus),
        "HF_HOME": str(ctx.home / ".cache" / "huggingface"),
        "HF_HUB_CACHE": str(hub_cache),
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    if offline:
        env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if "OMP_NUM_THREADS" in os.environ:
        env["OMP_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"]
    env.update(agent.environment(ctx))
    return env
