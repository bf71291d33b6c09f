"""What the four coding-agent CLIs share: a pinned npm package installed by `ptb agents install`
into `PTB_AGENTS_DIR/<name>-<version>` ([paths] agents_dir of ptb.toml; default `$PTB_HOME/agents`) and
mounted read-only into the sandbox; the agent configuration string; authentication by API key or by a
subscription credential file; an API base-URL override; and resuming the same session for continuation.

`--agent-config` is `MODEL[,effort=LEVEL][,base_url=URL][,auth=api-key|subscription][,search=on|off]
[,retries=N]` (retries: of a failed model request, where the CLI lets it be set; default the CLI's).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from posttrainbench.agents.base import Agent, AgentContext, AgentStartError
from posttrainbench.errors import UserError
from posttrainbench.provision.config import load as load_config
from posttrainbench.sandbox.bwrap import SYSTEM_DIRS
from posttrainbench.sandbox.plan import Mount
from posttrainbench.specs import AgentInfo
from posttrainbench.traces.parsers import PARSERS, Parser

Auth = Literal["api-key", "subscription"]


class CliSettings(BaseModel):
    """The parsed agent configuration, recorded in run.json (solve.agent_setup)."""

    model: str
    effort: str | None = None
    base_url: str | None = None
    auth: Auth = "api-key"
    search: bool = True
    retries: int | None = Field(default=None, ge=0)


def parse_config(agent: str, config: str) -> CliSettings:
    model, *options = [part.strip() for part in config.split(",")]
    if not model or "=" in model:
        raise AgentStartError(
            f"{agent} needs the model first in --agent-config, e.g. `--agent-config MODEL,effort=high`"
        )
    values: dict[str, object] = {"model": model}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or key not in ("effort", "base_url", "auth", "search", "retries"):
            raise AgentStartError(
                f"{agent}: unknown agent option {option!r}; options are effort=, base_url=, "
                "auth=api-key|subscription, search=on|off, retries=N"
            )
        if key == "retries" and not value.isdigit():
            raise AgentStartError(f"{agent}: retries must be a whole number, not {value!r}")
        if key == "auth" and value not in ("api-key", "subscription"):
            raise AgentStartError(f"{agent}: auth must be api-key or subscription, not {value!r}")
        if key == "search" and value not in ("on", "off"):
            raise AgentStartError(f"{agent}: search must be on or off, not {value!r}")
        values[key] = value == "on" if key == "search" else value
    return CliSettings.model_validate(values)


def agents_dir() -> Path:
    return load_config().paths.agents_dir


@dataclass(frozen=True)
class Subscription:
    """A subscription login: the file the CLI keeps it in (relative to its HOME), or an environment
    variable that carries it."""

    file: str | None = None
    env: str | None = None


class CliAgent(Agent):
    name: str
    package: str
    version: str
    binary: str
    api_key_env: tuple[str, ...]  # accepted API-key variables, the first one set is passed
    base_url_env: str | None = None  # where the CLI reads a base-URL override, if from the environment
    subscription: Subscription
    hosts: tuple[str, ...]  # the provider's API and login hosts (for --network allowlist)
    description: str
    resumable = True

    def __init__(self) -> None:
        self.info = AgentInfo(name=self.name, kind="cli", description=self.description)
        self.network_hosts = self.hosts

    # --- installation -------------------------------------------------------------------------
    @property
    def install_dir(self) -> Path:
        return agents_dir() / f"{self.name}-{self.version}"

    @property
    def executable(self) -> Path:
        return self.install_dir / "node_modules" / ".bin" / self.binary

    def installed(self) -> bool:
        return self.executable.exists()

    def install(self) -> str:
        """npm-install the pinned version; returns the CLI's own --version output."""
        npm = shutil.which("npm")
        if npm is None:
            raise UserError("npm is not installed; install Node.js 20+ (e.g. apt-get install nodejs npm)")
        self.install_dir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [npm, "install", "--prefix", str(self.install_dir), "--no-audit", "--no-fund", "--loglevel=error",
             f"{self.package}@{self.version}"],
            capture_output=True, text=True,
        )  # fmt: skip
        if proc.returncode != 0 or not self.installed():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise UserError(f"npm install {self.package}@{self.version} failed: " + " | ".join(tail))
        return self.version_output()

    def version_output(self) -> str:
        proc = subprocess.run(
            [str(self.executable), "--version"], capture_output=True, text=True, timeout=120,
            env={**os.environ, "HOME": str(self.install_dir)}, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        return (proc.stdout or proc.stderr).strip().splitlines()[0] if (proc.stdout or proc.stderr) else ""

    def trace_parser(self) -> Parser | None:
        return PARSERS[self.name]

    # --- configuration ------------------------------------------------------------------------
    def settings(self, ctx: AgentContext) -> CliSettings:
        return parse_config(self.name, ctx.config)

    def _api_key(self) -> tuple[str, str] | None:
        for name in self.api_key_env:
            if os.environ.get(name):
                return name, os.environ[name]
        return None

    def _subscription_file(self) -> Path | None:
        if self.subscription.file is None:
            return None
        override = os.environ.get(f"PTB_{self.name.upper().replace('-', '_')}_CREDENTIALS")
        return Path(override) if override else Path.home() / self.subscription.file

    def preflight(self, ctx: AgentContext) -> None:
        if not self.installed():
            raise AgentStartError(
                f"{self.name} ({self.package}@{self.version}) is not installed: run `ptb agents install {self.name}`"
            )
        if shutil.which("node") is None:
            raise AgentStartError(f"{self.name} needs Node.js (node) on PATH")
        cfg = self.settings(ctx)
        if cfg.auth == "api-key" and self._api_key() is None:
            raise AgentStartError(
                f"{self.name} with auth=api-key needs one of {', '.join(self.api_key_env)} in the environment "
                "(or auth=subscription in --agent-config)"
            )
        if cfg.auth == "subscription":
            sub = self._subscription_file()
            has_env = self.subscription.env and os.environ.get(self.subscription.env)
            if not has_env and (sub is None or not sub.is_file()):
                where = " or ".join(
                    w
                    for w in (
                        str(sub) if sub else None,
                        self.subscription.env and f"${self.subscription.env}",
                    )
                    if w
                )
                raise AgentStartError(f"{self.name} with auth=subscription needs its login at {where}")

    def setup(self, ctx: AgentContext) -> dict:
        """What run.json records of this agent's configuration (never a secret)."""
        cfg = self.settings(ctx)
        if cfg.auth == "api-key":
            key = self._api_key()
            auth = f"api-key ({key[0] if key else 'missing'})"
        elif self.subscription.env and os.environ.get(self.subscription.env):
            auth = f"subscription (${self.subscription.env})"
        else:
            auth = f"subscription (~/{self.subscription.file})"
        return {"cli": f"{self.package}@{self.version}", **cfg.model_dump(), "auth": auth}

    def environment(self, ctx: AgentContext) -> dict[str, str]:
        cfg = self.settings(ctx)
        env = dict(self.cli_environment(ctx, cfg))
        if cfg.auth == "api-key":
            key = self._api_key()
            if key:
                env[key[0]] = key[1]
        elif self.subscription.env and os.environ.get(self.subscription.env):
            env[self.subscription.env] = os.environ[self.subscription.env]
        if cfg.base_url and self.base_url_env:
            env[self.base_url_env] = cfg.base_url
        return env

    def mounts(self, ctx: AgentContext) -> list[Mount]:
        """The CLI read-only (and Node.js where it is outside the system directories); a subscription
        login bound read-write at the one place the CLI reads it (refreshed tokens are kept)."""
        mounts = [Mount(kind="ro", source=str(self.install_dir), target=str(self.install_dir))]
        node = Path(shutil.which("node") or "/usr/bin/node").resolve()
        prefix = node.parent.parent
        if not any(str(prefix) == d or str(prefix).startswith(d + "/") for d in SYSTEM_DIRS):
            mounts.append(Mount(kind="ro", source=str(prefix), target=str(prefix)))
        cfg = self.settings(ctx)
        sub = self._subscription_file()
        if cfg.auth == "subscription" and sub is not None and sub.is_file():
            target = ctx.home / self.subscription.file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
            mounts.append(Mount(kind="rw", source=str(sub), target=str(target)))
        return mounts

    def path_entries(self) -> list[str]:
        node = shutil.which("node")
        return [str(self.executable.parent), *([str(Path(node).resolve().parent)] if node else [])]

    # --- per CLI ------------------------------------------------------------------------------
    def cli_environment(self, ctx: AgentContext, cfg: CliSettings) -> dict[str, str]:
        """Fixed environment of this CLI (telemetry and update checks off, timeouts)."""
        return {}

    def prepare(self, ctx: AgentContext) -> None:
        """Write the CLI's configuration files into the agent's HOME before it starts."""
        return None

    @abstractmethod
    def command(self, ctx: AgentContext) -> list[str]: ...

    @abstractmethod
    def resume_command(self, ctx: AgentContext, session_id: str | None, message: str) -> list[str]:
        """Continue the same session (the last one when session_id is None) with a new message."""
