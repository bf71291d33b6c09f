"""A sandbox session: everything the agent's sandbox needs, set up around one command and torn
down after it - the copy-on-write model cache, the allotted GPUs, the egress and grader proxies,
a private /tmp on disk, and the mount plan that ties them together. `solve` runs the agent in
one; `ptb shell` opens another on the same run with the same plan."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import posttrainbench
from posttrainbench import sandbox, settings, tasks
from posttrainbench.agents import registry
from posttrainbench.agents.base import Agent, AgentContext, AgentStartError, agent_environment
from posttrainbench.data import DATA_DIR_ENV
from posttrainbench.errors import UserError
from posttrainbench.lifecycle.prepare import protected_paths
from posttrainbench.plugins import code_dir
from posttrainbench.provision.config import PATH_ENV
from posttrainbench.redact import Redactor
from posttrainbench.rundir import RunDir
from posttrainbench.sandbox import gpus, services
from posttrainbench.sandbox.cache_layer import CacheLayer
from posttrainbench.sandbox.egress import DEFAULT_ALLOWLIST
from posttrainbench.sandbox.grader import Upstream
from posttrainbench.sandbox.plan import Mount, MountPlan, Sandbox
from posttrainbench.specs import RunRecord, utcnow


def mount_plan(
    run: RunDir,
    record: RunRecord,
    env: dict[str, str],
    hub_cache: Path,
    agent_cache: Path,
    extra: list[Mount],
    gpu_ids: list[int],
) -> MountPlan:
    """Workspace writable with the task files read-only inside it; this Python environment, the
    shared model cache and the agent's own files read-only; the agent's home and its copy-on-write
    view of the cache writable. Everything else of the host - other runs, the results store, the
    user's home and credential files, the harness's checkout and state - is not mounted at all;
    the results root is also covered with an empty directory in case a bind lands inside it."""
    ws = str(run.workspace)
    code = [Path(sys.base_prefix), Path(sys.prefix), Path(posttrainbench.__file__).parent]
    code += [  # a plugin's task or agent installed in development mode lives outside the environment
        d
        for d in (code_dir(tasks.get(record.spec.task)), code_dir(registry.get(record.spec.agent)))
        if not any(d.is_relative_to(c) for c in code)
    ]
    mounts = [
        Mount(kind="tmpfs", target=record.results_root),
        *[Mount(kind="ro", source=str(p), target=str(p)) for p in code],
        Mount(kind="rw", source=ws, target=ws),
        *[
            Mount(kind="ro", source=f"{ws}/{p}", target=f"{ws}/{p}")
            for p in protected_paths(record.spec.task)
        ],
        Mount(kind="rw", source=str(run.agent_home), target=str(run.agent_home)),
        Mount(kind="ro", source=str(hub_cache), target=str(hub_cache)),
    ]
    if agent_cache != hub_cache:
        mounts.append(Mount(kind="rw", source=str(agent_cache), target=str(agent_cache)))
    return MountPlan(
        mounts=mounts + extra,
        workdir=ws,
        env=env,
        network=record.spec.network == "open",
        tmp=str(run.agent_dir / "tmp"),
        gpus=gpu_ids,
    )


def task_data(task_name: str) -> tuple[dict[str, str], list[Mount]]:
    """Where the agent's evaluate.py finds the task's test data (verified, and fetched if it is not
    local, before the agent starts, so that it also works offline), and its read-only mount."""
    task = tasks.get(task_name)
    if not task.data_files:
        return {}, []
    root = str(task.data().root.parent)
    return {DATA_DIR_ENV: root}, [Mount(kind="ro", source=root, target=root)]


def twin_access(agent: Agent) -> tuple[dict[str, str], list[Mount]]:
    """The instruct twins' cache, read-only, for the agent that submits a twin (the instruct baseline)
    and for no other: where `models.twin_snapshot` looks inside the sandbox, and its mount."""
    root = settings.twin_cache()
    if not agent.needs_twin or not root.is_dir():
        return {}, []
    return {PATH_ENV["twin_cache"]: str(root)}, [Mount(kind="ro", source=str(root), target=str(root))]


def grader_upstream(record: RunRecord) -> Upstream | None:
    """The judged tasks' grader, resolved from the harness's environment (None: not judged)."""
    judge = tasks.get(record.spec.task).info.default_judge
    if judge is None:
        return None
    return Upstream.from_judge(record.spec.judge_model or judge)


def resolve_sandbox(record: RunRecord) -> Sandbox:
    return sandbox.resolve(record.spec.sandbox, record.spec.sandbox_image)


def agent_context(run: RunDir, record: RunRecord, deadline: float) -> AgentContext:
    spec = record.spec
    return AgentContext(
        workspace=run.workspace,
        home=run.agent_home,
        prompt=run.prompt_file.read_text(),
        model=record.model_card,
        task=spec.task,
        deadline=deadline,
        gpus=spec.gpus,
        config=spec.agent_config,
    )


@dataclass
class Session:
    box: Sandbox
    plan: MountPlan
    argv: list[str]  # the full command line
    env: dict[str, str]  # to start it with
    layer: CacheLayer
    services: services.Services

    def wrap(self, command: list[str]) -> list[str]:
        """The full command line of another command in this same session (a continuation)."""
        return self.box.command(self.plan, self.services.wrap(command))


@contextmanager
def open_session(
    run: RunDir,
    record: RunRecord,
    agent: Agent,
    ctx: AgentContext,
    command: list[str],
    box: Sandbox,
    log_dir: Path,
) -> Iterator[Session]:
    """Proxy logs go to `log_dir`. Raises AgentStartError when the session cannot be set up (GPUs,
    grader configuration)."""
    spec = record.spec
    hub_cache = settings.model_cache()
    try:
        gpu_ids = gpus.allot(spec.gpus)
        upstream = grader_upstream(record)
    except (ValueError, UserError) as e:
        raise AgentStartError(str(e)) from None
    allow = [*DEFAULT_ALLOWLIST, *agent.network_hosts, *spec.allow_hosts]
    layer = CacheLayer(hub_cache, run.agent_dir)
    tmp = run.agent_dir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        with (
            layer.mounted() as agent_cache,
            services.running(log_dir, spec.network, allow, upstream, spec.grader_token_budget) as svc,
        ):
            env = agent_environment(ctx, agent_cache, offline=spec.network != "open", agent=agent)
            # Login shells (Codex runs its commands with `bash -lc`) reset PATH from /etc/profile.
            (run.agent_home / ".profile").write_text(f"export PATH={shlex.quote(env['PATH'])}\n")
            data_env, data_mounts = task_data(spec.task)
            twin_env, twin_mounts = twin_access(agent)
            env.update(data_env | twin_env)
            env.update(svc.env())
            extra = [*data_mounts, *twin_mounts, *svc.mounts()]
            extra += agent.mounts(ctx)
            plan = mount_plan(run, record, env, hub_cache, agent_cache, extra, gpu_ids)
            yield Session(box, plan, box.command(plan, svc.wrap(command)), box.env(plan), layer, svc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def shell(run: RunDir, command: list[str]) -> int:
    """Run `command` (default: an interactive shell) in the run's sandbox, with the same mount plan,
    network policy and proxies as its agent had; proxy logs and a line per session go to
    agent/shell/ so that the agent's own evidence is not mixed with them."""
    record = run.load()
    agent = registry.get(record.spec.agent)
    box = sandbox.resolve(record.sandbox or record.spec.sandbox, record.spec.sandbox_image)
    deadline = record.solve.deadline if record.solve else time.time()
    ctx = agent_context(run, record, deadline)
    argv = command or ["/bin/bash" if Path("/bin/bash").exists() else "/bin/sh"]
    log_dir = run.agent_dir / "shell"
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / "sessions.jsonl").open("a") as f:
        line = json.dumps({"started_at": utcnow(), "command": argv, "sandbox": box.name})
        f.write(Redactor.from_environment()(line) + "\n")
    try:
        with open_session(run, record, agent, ctx, argv, box, log_dir) as session:
            return subprocess.call(session.argv, env=session.env, cwd=session.plan.workdir)
    except AgentStartError as e:
        raise UserError(str(e)) from None
