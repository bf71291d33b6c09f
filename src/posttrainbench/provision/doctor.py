"""`ptb doctor`: what a run needs, checked on this machine, with what to do about each miss.

What is needed comes from the options (`--agent`, `--judge`, `--gpus`) and, with `--experiment`, from the
experiment's runs (their agents, judges, GPUs, sandboxes, backend, base models and paths). A check that
fails means a run would fail; a warning means it would run in a lesser way (no sandbox, a read-only model
cache) or that something not asked for is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal
from unittest import mock

from pydantic import BaseModel

from posttrainbench import settings
from posttrainbench.agents.base import AgentStartError
from posttrainbench.agents.cli.base import Auth, CliAgent, parse_config
from posttrainbench.provision import config

Status = Literal["ok", "warn", "fail"]
GIB = 1024**3
DISK_FAIL_GIB = 5
DISK_WARN_GIB = 50  # a 4B model's checkpoint is ~8 GB; a run keeps its final model
NODE_MAJOR = 20  # the CLI agents need Node.js 20+
# inspect providers -> the key they read
JUDGE_KEYS = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "google": "GOOGLE_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
}
LOCAL_PROVIDERS = {"hf", "vllm", "sglang", "ollama", "llama-cpp-python", "mockllm"}
KEY_FIX = "export {name}=..., or put it in ./.env or in [credentials] of ptb.toml (docs/configuration.md)"
USERNS_FIX = (
    "allow unprivileged user namespaces: `sysctl -w kernel.unprivileged_userns_clone=1` (Debian), "
    "`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (Ubuntu 24.04+); in a container, start "
    "it with --privileged or unconfined seccomp/AppArmor"
)


class Check(BaseModel):
    name: str
    status: Status
    detail: str
    fix: str = ""  # what to do, when not ok


class Report(BaseModel):
    ready: bool  # no check failed
    checks: list[Check]


class Needs(BaseModel):
    """What the runs to check for ask of this machine."""

    gpus: int = 0
    agents: list[tuple[str, str]] = []  # (agent, agent config); config "" leaves the auth open
    judges: list[str] = []
    sandboxes: set[str] = {"auto"}
    backend: str = "local"
    models: list[str] = []
    environment: dict[str, str] = {}  # the experiment's PTB_* paths, which its runs get


def needs(experiment: Path | None, agents: list[str], judges: list[str], gpus: int | None) -> Needs:
    """From the options of `ptb doctor`; an unknown agent or a bad experiment file is a UserError."""
    from posttrainbench.agents import registry

    for name in agents:
        registry.get(name)
    out = Needs(gpus=gpus or 0, agents=[(a, "") for a in agents], judges=list(judges))
    if experiment is None:
        return out
    from posttrainbench import tasks
    from posttrainbench.experiments import spec

    exp, runs = spec.load(experiment)
    out.environment = spec.environment(experiment, exp)
    out.environment["PTB_RESULTS"] = str(spec.results_dir(experiment, exp))
    out.backend = exp.backend.kind
    if gpus is None and exp.backend.kind == "local":  # on a cluster the GPUs are on the nodes
        out.gpus = max(r.spec.gpus for r in runs)
    out.agents += [(a.name, a.config) for a in exp.agents]
    out.sandboxes = {r.spec.sandbox for r in runs}
    out.models = list(dict.fromkeys(r.spec.model for r in runs))
    for r in runs:
        final_judge = r.spec.judge_model or tasks.get(r.spec.task).info.default_judge
        out.judges += [*r.spec.integrity_judges, *([final_judge] if final_judge else [])]
    out.judges = list(dict.fromkeys(out.judges))
    return out


def run(need: Needs) -> Report:
    # The experiment's paths are in force while its checks run, as they are in its runs.
    with mock.patch.dict(os.environ, need.environment):
        cfg = config.load()
        gpu, found = gpus(need.gpus)
        checks = [gpu, cuda(need.gpus, found)]
        checks += [disk("results", cfg.paths.results), disk("model cache", settings.model_cache())]
        checks += [
            bwrap("bwrap" in need.sandboxes),
            fuse_overlayfs(),
            apptainer("apptainer" in need.sandboxes),
        ]
        checks += [
            scheduler("slurm", ("sbatch", "squeue"), need.backend == "slurm"),
            scheduler("htcondor", ("condor_submit", "condor_q"), need.backend == "htcondor"),
        ]
        checks += agent_checks(need, cfg)
        checks += [judge_credentials(j, cfg) for j in need.judges]
        if need.models:
            checks.append(
                model_cache(need.models, settings.model_cache(), "PTB_MODEL_CACHE" in need.environment)
            )
    return Report(ready=all(c.status != "fail" for c in checks), checks=checks)


# --- GPUs -----------------------------------------------------------------------------------------
def gpus(required: int) -> tuple[Check, int]:
    """The NVIDIA GPUs and driver, through NVML; also the number found."""
    import pynvml

    try:
        pynvml.nvmlInit()
        try:
            count = pynvml.nvmlDeviceGetCount()
            driver = pynvml.nvmlSystemGetDriverVersion()
            names = [pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i)) for i in range(count)]
        finally:
            pynvml.nvmlShutdown()
    except pynvml.NVMLError as e:
        smi = " (nvidia-smi is on PATH)" if shutil.which("nvidia-smi") else ""
        detail = f"no NVIDIA GPU found: NVML says {e}{smi}"
        if required:
            fix = "install the NVIDIA driver (nvidia-smi lists the GPUs), or run on a GPU machine"
            return Check(name="gpu", status="fail", detail=f"{detail}; the runs need {required}", fix=fix), 0
        fix = "GPU runs (--gpus N) need a machine with NVIDIA GPUs and their driver"
        return Check(name="gpu", status="warn", detail=f"{detail}; not needed here", fix=fix), 0
    detail = f"{count} GPU(s) ({', '.join(dict.fromkeys(names)) or 'none'}), driver {driver}"
    if count < required:
        fix = "run on a machine with more GPUs, or ask for fewer (--gpus, [run] gpus)"
        return Check(name="gpu", status="fail", detail=f"{detail}; the runs need {required}", fix=fix), count
    return Check(name="gpu", status="ok", detail=detail), count


def cuda(required: int, found: int) -> Check:
    """CUDA as torch sees it (torch is imported only when there is a GPU to see)."""
    if not found:
        return Check(name="cuda", status="warn", detail="not checked: no GPU")
    import torch

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    note = f" (CUDA_VISIBLE_DEVICES={visible})" if visible is not None else ""
    if torch.version.cuda is None:
        return Check(
            name="cuda", status="fail" if required else "warn", detail=f"torch {torch.__version__} is a CPU build",
            fix="install the CUDA build of torch (pip install torch --index-url https://download.pytorch.org/whl/cu128)",
        )  # fmt: skip
    if not torch.cuda.is_available() or torch.cuda.device_count() < required:
        return Check(
            name="cuda", status="fail" if required else "warn",
            detail=f"torch sees {torch.cuda.device_count()} of {found} GPU(s){note}",
            fix="check CUDA_VISIBLE_DEVICES and that the driver supports CUDA "
            f"{torch.version.cuda} (nvidia-smi shows the highest it supports)",
        )  # fmt: skip
    return Check(
        name="cuda", status="ok",
        detail=f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.device_count()} device(s){note}",
    )  # fmt: skip


# --- disk -----------------------------------------------------------------------------------------
def disk(label: str, path: Path) -> Check:
    """Free space on the file system the path is (or will be) on."""
    existing = next(p for p in (path.absolute(), *path.absolute().parents) if p.exists())
    free = shutil.disk_usage(existing).free / GIB
    name = f"disk: {label}"
    detail = f"{free:.0f} GiB free at {path}" + ("" if existing == path.absolute() else f" (on {existing})")
    key = "results" if label == "results" else "model_cache"
    fix = f"free space there, or point [paths] {key} of ptb.toml at a larger disk"
    if free < DISK_FAIL_GIB:
        return Check(name=name, status="fail", detail=detail, fix=fix)
    if free < DISK_WARN_GIB:
        return Check(name=name, status="warn", detail=f"{detail} (less than {DISK_WARN_GIB} GiB)", fix=fix)
    return Check(name=name, status="ok", detail=detail)


# --- sandbox --------------------------------------------------------------------------------------
def bwrap(required: bool) -> Check:
    """bubblewrap, and whether it can create the namespaces a sandbox needs here."""
    status: Status = "fail" if required else "warn"
    binary = shutil.which("bwrap")
    if binary is None:
        detail = "not installed" + ("" if required else ": --sandbox auto runs the agent without a sandbox")
        return Check(name="bwrap", status=status, detail=detail, fix="apt-get install bubblewrap")
    from posttrainbench.sandbox.bwrap import Bubblewrap

    if Bubblewrap.works(binary):  # the probe `--sandbox auto` and `bwrap` use
        return Check(name="bwrap", status="ok", detail=f"{binary} creates namespaces")
    why = (
        _first_line([binary, "--ro-bind", "/", "/", "true"]) or "its probe fails"
    )  # the error, if it says one
    return Check(
        name="bwrap", status=status, detail=f"{binary} cannot create a sandbox: {why}", fix=USERNS_FIX
    )


def fuse_overlayfs() -> Check:
    binary = shutil.which("fuse-overlayfs")
    if binary is None or not Path("/dev/fuse").exists():
        missing = "not installed" if binary is None else "/dev/fuse is missing"
        return Check(
            name="fuse-overlayfs", status="warn",
            detail=f"{missing}: the agent sees the model cache read-only and cannot download into it",
            fix="apt-get install fuse-overlayfs (and, in a container, pass --device /dev/fuse)",
        )  # fmt: skip
    return Check(
        name="fuse-overlayfs", status="ok", detail=f"{binary}: the agent's model downloads are layered"
    )


def apptainer(required: bool) -> Check:
    binary = shutil.which("apptainer") or shutil.which("singularity")
    if binary is None:
        if required:
            fix = "install Apptainer (apptainer.org), or use --sandbox bwrap"
            return Check(name="apptainer", status="fail", detail="not installed", fix=fix)
        return Check(
            name="apptainer", status="ok", detail="not installed; needed only for --sandbox apptainer"
        )
    return Check(name="apptainer", status="ok", detail=f"{binary}: {_first_line([binary, '--version'])}")


def _first_line(command: list[str]) -> str:
    """The first line the command prints (stdout, else stderr)."""
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"no version ({e})"
    return next(iter((proc.stdout or proc.stderr).strip().splitlines()), "")


# --- schedulers -----------------------------------------------------------------------------------
def scheduler(kind: str, commands: tuple[str, ...], required: bool) -> Check:
    missing = [c for c in commands if shutil.which(c) is None]
    if not missing:
        return Check(
            name=kind,
            status="ok",
            detail=f"{', '.join(commands)} at {Path(shutil.which(commands[0])).parent}",
        )
    detail = f"{', '.join(missing)} not found"
    if required:
        fix = f"run `ptb submit` on a {kind} submit (login) node, or install the {kind} client tools"
        return Check(name=kind, status="fail", detail=detail, fix=fix)
    return Check(name=kind, status="ok", detail=f'{detail}; needed only for [backend] kind = "{kind}"')


# --- agents ---------------------------------------------------------------------------------------
def _cli_agents() -> dict[str, CliAgent]:
    from posttrainbench.agents import registry

    return {n: a for n, a in registry.AGENTS.items() if isinstance(a, CliAgent)}


def _cli_judge(judge: str) -> tuple[str, str]:
    """(agent, config) of `cli:AGENT:MODEL[,options]`."""
    _, agent, agent_config = [*judge.split(":", 2), "", ""][:3]
    return agent, agent_config


def agent_checks(need: Needs, cfg: config.Config) -> list[Check]:
    """Node.js, each CLI agent's install and version, and its credentials: for the CLI agents and CLI
    judges asked for; with no agent or judge asked for, every CLI agent's install (a miss is then only a
    warning) and which keys are set."""
    clis = _cli_agents()
    if not need.agents and not need.judges:
        checks = [node(False)]
        with ThreadPoolExecutor(len(clis)) as pool:
            checks += pool.map(lambda agent: agent_install(agent, False), clis.values())
        return [*checks, credentials_summary(cfg)]
    cli_judges = [_cli_judge(j) for j in need.judges if j.startswith("cli:")]
    names = list(dict.fromkeys(a for a, _ in [*need.agents, *cli_judges] if a in clis))
    if not names:
        return []
    checks = [node(True)]
    with ThreadPoolExecutor(len(names)) as pool:
        checks += pool.map(lambda name: agent_install(clis[name], True), names)
    for agent, agent_config in dict.fromkeys(need.agents):
        if agent in clis:
            label = f"{agent} ({agent_config})" if agent_config else agent
            checks.append(agent_credentials(clis[agent], label, agent_config, cfg))
    return checks


def node(required: bool) -> Check:
    binary = shutil.which("node")
    fix = f"install Node.js {NODE_MAJOR}+ (nodejs.org, or apt-get install nodejs npm)"
    status: Status = "fail" if required else "warn"
    if binary is None:
        return Check(name="node", status=status, detail="not installed; the CLI agents need it", fix=fix)
    version = _first_line([binary, "--version"])
    major = version.lstrip("v").split(".")[0]
    if not major.isdigit() or int(major) < NODE_MAJOR:
        return Check(
            name="node", status=status, detail=f"{binary}: {version}, older than {NODE_MAJOR}", fix=fix
        )
    return Check(name="node", status="ok", detail=f"{binary}: {version}")


def agent_install(agent: CliAgent, required: bool) -> Check:
    name = f"agent: {agent.name}"
    if not agent.installed():
        return Check(
            name=name, status="fail" if required else "warn",
            detail=f"{agent.package}@{agent.version} is not installed in {agent.install_dir}",
            fix=f"ptb agents install {agent.name}",
        )  # fmt: skip
    try:
        version = agent.version_output()
    except (OSError, subprocess.TimeoutExpired) as e:
        version = f"no version ({e})"
    if agent.version not in version:
        return Check(
            name=name, status="warn", detail=f"says {version!r}; pinned {agent.version}",
            fix=f"ptb agents install {agent.name} --force",
        )  # fmt: skip
    return Check(name=name, status="ok", detail=f"{version} (pinned {agent.version}) in {agent.install_dir}")


def _origin(name: str, cfg: config.Config) -> str:
    origin = cfg.origins.get(f"credentials.{name}")
    return origin.source if origin else "environment"


def agent_credentials(agent: CliAgent, label: str, agent_config: str, cfg: config.Config) -> Check:
    """As the agent itself finds its credentials at start (CliAgent.preflight). `agent_config` "" leaves
    the auth open: an API key, else a subscription login (a warning: it needs auth=subscription)."""
    name = f"credentials: {label}"
    try:
        auth: Auth | None = parse_config(agent.name, agent_config).auth if agent_config else None
    except AgentStartError as e:
        return Check(name=name, status="fail", detail=str(e), fix="correct the agent configuration")
    key = agent._api_key()
    if auth != "subscription" and key is not None:
        return Check(name=name, status="ok", detail=f"{key[0]} set (from {_origin(key[0], cfg)})")
    login = _subscription(agent, cfg)
    if auth == "subscription" or (auth is None and login):
        if login:
            warn = auth is None
            return Check(
                name=name, status="warn" if warn else "ok",
                detail=f"{login}" + (f"; no {' or '.join(agent.api_key_env)}" if warn else ""),
                fix="the login is used with --agent-config MODEL,auth=subscription" if warn else "",
            )  # fmt: skip
        file = agent._subscription_file()
        where = " or ".join(w for w in (str(file) if file else None, agent.subscription.env) if w)
        return Check(
            name=name, status="fail", detail=f"auth=subscription, but no login at {where}",
            fix=f"log in with {agent.name} itself on this machine (it writes {file})"
            + (f", or set {agent.subscription.env}" if agent.subscription.env else ""),
        )  # fmt: skip
    wanted = " or ".join(agent.api_key_env)
    return Check(
        name=name, status="fail", detail=f"{wanted} is not set",
        fix=KEY_FIX.format(name=agent.api_key_env[0]) + "; or log in and use auth=subscription",
    )  # fmt: skip


def _subscription(agent: CliAgent, cfg: config.Config) -> str | None:
    """Where the agent's subscription login is, if it has one here."""
    env = agent.subscription.env
    if env and os.environ.get(env):
        return f"subscription: {env} set (from {_origin(env, cfg)})"
    file = agent._subscription_file()
    return f"subscription login at {file}" if file is not None and file.is_file() else None


def judge_credentials(judge: str, cfg: config.Config) -> Check:
    """The key a judge (integrity judge, or a judged task's final judge) reads in the harness's process."""
    if judge.startswith("cli:"):
        agent, agent_config = _cli_judge(judge)
        clis = _cli_agents()
        if agent not in clis:
            detail = f"no CLI agent {agent!r}; CLI agents: {', '.join(clis)}"
            return Check(
                name=f"credentials: judge {judge}", status="fail", detail=detail, fix="correct --judge"
            )
        return agent_credentials(clis[agent], f"judge {judge}", agent_config, cfg)
    name = f"credentials: judge {judge}"
    provider, _, rest = judge.partition("/")
    if provider == "openai-api":
        prefix = rest.partition("/")[0].upper().replace("-", "_")
        wanted = [f"{prefix}_API_KEY", f"{prefix}_BASE_URL"]
    elif provider in JUDGE_KEYS:
        wanted = [JUDGE_KEYS[provider]]
    elif provider in LOCAL_PROVIDERS:
        return Check(name=name, status="ok", detail=f"a local model ({provider}): no key")
    else:
        return Check(
            name=name, status="warn", detail=f"which key provider {provider!r} reads is not known here",
            fix=f"see inspect's documentation of the {provider} provider",
        )  # fmt: skip
    missing = [w for w in wanted if not os.environ.get(w)]
    if missing:
        return Check(
            name=name, status="fail", detail=f"{' and '.join(missing)} not set",
            fix="; ".join(KEY_FIX.format(name=m) if m in config.CREDENTIALS else f"export {m}=..." for m in missing),
        )  # fmt: skip
    return Check(
        name=name, status="ok", detail=", ".join(f"{w} set (from {_origin(w, cfg)})" for w in wanted)
    )


def credentials_summary(cfg: config.Config) -> Check:
    """With no agent or judge named: which provider keys are set at all."""
    if not cfg.credentials:
        return Check(
            name="credentials", status="warn", detail="no provider key set",
            fix="name the agents and judges you will run (--agent, --judge, --experiment) to see what they need",
        )  # fmt: skip
    found = ", ".join(f"{n} (from {_origin(n, cfg)})" for n in cfg.credentials)
    return Check(name="credentials", status="ok", detail=f"set: {found}")


# --- the model cache ------------------------------------------------------------------------------
def model_cache(names: list[str], cache: Path, experiment_cache: bool) -> Check:
    """The experiment's base models (and their instruct twins, which the lineage check compares with).
    `experiment_cache`: the cache is the experiment's [paths] model_cache, so the fix names it."""
    from posttrainbench import models
    from posttrainbench.errors import UserError

    option = f" --cache {cache}" if experiment_cache else ""
    missing, twins = [], []
    for name in names:
        card = models.get(name)
        if card.built_locally:  # built on first use
            continue
        try:
            models.snapshot(card, cache)
        except UserError:
            missing.append(name)
            continue
        if card.instruct_twin and models.twin_snapshot(card, cache) is None:
            twins.append(name)
    if missing:
        return Check(
            name="model cache", status="fail", detail=f"not in {cache}: {', '.join(missing)}",
            fix=f"ptb cache pull --models {','.join(missing)}{option}",
        )  # fmt: skip
    if twins:
        return Check(
            name="model cache", status="warn",
            detail=f"the instruct twins of {', '.join(twins)} are in neither {settings.twin_cache()} nor {cache}: "
            "the lineage check and the instruct baseline need them",
            fix=f"ptb cache pull --models {','.join(twins)}{option}",
        )  # fmt: skip
    return Check(name="model cache", status="ok", detail=f"{len(names)} model(s) in {cache}")
