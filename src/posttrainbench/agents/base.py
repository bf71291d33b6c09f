"""The agent interface and the environment every agent receives.

Contract (the same for every agent, built-in or not): the working directory is the workspace and
these environment variables are set:
  PROMPT        the full task prompt (also in the run directory's prompt.txt)
  AGENT_CONFIG  the agent configuration string (e.g. a model name), may be empty
  PTB_MODEL     the base model's hub id, loadable with from_pretrained (the cache is HF_HUB_CACHE)
  PTB_TASK      the task name
  PTB_DEADLINE  the deadline as Unix seconds (timer.sh prints the time left)
  NUM_GPUS      the number of GPUs allotted (CUDA_VISIBLE_DEVICES lists them)
plus the credentials the agent's own CLI needs (`Agent.credentials`) and nothing else of the
harness's environment: grader and judge keys never enter the sandbox.
"""

from __future__ import annotations

import os
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from posttrainbench.specs import AgentInfo, ModelCard


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

    @abstractmethod
    def command(self, ctx: AgentContext) -> list[str]:
        """The agent's command line, run with the workspace as working directory."""

    def preflight(self, ctx: AgentContext) -> None:
        """Raise AgentStartError when the agent cannot start; nothing is launched then."""
        return None

    def readonly_paths(self, ctx: AgentContext) -> list[Path]:
        """Files or directories outside the workspace the agent needs to see (read-only)."""
        return []


def agent_environment(
    ctx: AgentContext, hub_cache: Path, offline: bool, credentials: tuple[str, ...] = ()
) -> dict[str, str]:
    """The whole environment of the agent: built from an allowlist, nothing inherited except the
    named credentials."""
    python_bin = str(Path(sys.executable).parent)
    env = {
        "PATH": f"{python_bin}:/usr/local/bin:/usr/bin:/bin",
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
    for key in ("OMP_NUM_THREADS", *credentials):
        if key in os.environ:
            env[key] = os.environ[key]
    return env
