"""solve: run the agent in its sandbox with the workspace as working directory, and enforce the
deadline: SIGTERM to the agent's whole process group at the deadline, SIGKILL after the grace
period. Records why solve ended: exited, crashed, deadline or failed_to_start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import posttrainbench
from posttrainbench import sandbox, settings, tasks
from posttrainbench.agents import registry
from posttrainbench.agents.base import AgentContext, AgentStartError, agent_environment
from posttrainbench.data import DATA_DIR_ENV
from posttrainbench.lifecycle.prepare import populate_workspace, protected_paths
from posttrainbench.process_group import members, signal_group
from posttrainbench.rundir import RunDir, hash_tree
from posttrainbench.sandbox.cache_layer import CacheLayer
from posttrainbench.sandbox.plan import Mount, MountPlan
from posttrainbench.specs import RunRecord, SolveEnd, SolveResult, utcnow

Progress = Callable[[float], None]


def mount_plan(
    run: RunDir,
    record: RunRecord,
    env: dict[str, str],
    hub_cache: Path,
    agent_cache: Path,
    extra_ro: list[Path],
) -> MountPlan:
    """Workspace writable with the task files read-only inside it; the run directory's other
    contents and the rest of the results tree hidden; the shared model cache, this Python
    environment and the agent's own files read-only (re-bound explicitly in case they live under
    /tmp); the agent's copy-on-write view of the cache writable."""
    ws = str(run.workspace)
    code = [Path(sys.base_prefix), Path(sys.prefix), Path(posttrainbench.__file__).parent, *extra_ro]
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
    return MountPlan(mounts=mounts, workdir=ws, env=env, network=record.spec.network == "open")


def task_data_env(task_name: str) -> dict[str, str]:
    """Where the agent's evaluate.py finds the task's test data: verified (and fetched, if it is not
    local) before the agent starts, so that it also works offline. The root filesystem is visible
    read-only inside the sandbox, so the directory needs no mount of its own."""
    task = tasks.get(task_name)
    if not task.data_files:
        return {}
    return {DATA_DIR_ENV: str(task.data().root.parent)}


def solve(run: RunDir, progress: Progress | None = None) -> SolveResult:
    with run.stage("solve"):
        record = run.load()
        spec = record.spec
        hub_cache = settings.model_cache()
        agent = registry.get(spec.agent)
        box = sandbox.resolve(spec.sandbox)
        deadline = time.time() + spec.budget_seconds
        populate_workspace(run, spec, deadline)  # pristine task files on a re-run; the real deadline
        ctx = AgentContext(
            workspace=run.workspace,
            home=run.agent_home,
            prompt=run.prompt_file.read_text(),
            model=record.model_card,
            task=spec.task,
            deadline=deadline,
            gpus=spec.gpus,
            config=spec.agent_config,
        )
        protected = hash_tree(run.workspace, protected_paths(spec.task))
        started_at, t0 = utcnow(), time.monotonic()
        run.agent_dir.mkdir(exist_ok=True)
        layer = CacheLayer(hub_cache, run.agent_dir)
        try:
            agent.preflight(ctx)
            with layer.mounted() as agent_cache:
                env = agent_environment(ctx, agent_cache, offline=spec.network == "offline")
                env.update(task_data_env(spec.task))
                plan = mount_plan(run, record, env, hub_cache, agent_cache, agent.readonly_paths(ctx))
                argv = box.command(plan, agent.command(ctx))
                end, code, detail = _supervise(
                    argv, box.env(plan), plan.workdir, run.agent_log, deadline, spec.grace_seconds, progress
                )
        except (AgentStartError, OSError) as e:
            end, code, detail = SolveEnd.failed_to_start, None, str(e)
            run.agent_log.write_text(f"[{_stamp()}] failed to start: {e}\n")
        layer.evidence(run.agent_dir / "downloads.json")
        result = SolveResult(
            end=end,
            exit_code=code,
            started_at=started_at,
            seconds=round(time.monotonic() - t0, 2),
            deadline=deadline,
            sandbox=box.name,
            cache_layer="overlay" if layer.available else f"read-only ({layer.reason})",
            detail=detail,
            protected_before=protected,
        )
        record = run.load()
        record.solve, record.sandbox = result, box.name
        run.save(record)
        return result


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pump(fd: int, log_path: Path) -> None:
    """Copy the agent's output to the log, each line prefixed with a UTC timestamp. A line that
    redraws itself with carriage returns (progress bars) is logged as a terminal would show it."""

    def shown(line: bytes) -> str:
        segments = [seg for seg in line.split(b"\r") if seg.strip()]
        return segments[-1].decode("utf-8", errors="replace").rstrip() if segments else ""

    pending = b""
    with log_path.open("a", encoding="utf-8") as log:
        while chunk := os.read(fd, 1 << 16):
            *lines, pending = (pending + chunk).split(b"\n")
            if len(pending) > 1 << 16:  # a bar that never ends its line: keep only its last state
                pending = pending[pending.rfind(b"\r") + 1 :][-(1 << 16) :]
            for line in lines:
                log.write(f"[{_stamp()}] {shown(line)}\n")
            log.flush()
        if pending.strip():
            log.write(f"[{_stamp()}] {shown(pending)}\n")


def _terminate_agent(pgid: int) -> None:
    """SIGTERM to every process of the agent's group except the sandbox's own bwrap processes:
    bwrap dies on SIGTERM and takes the whole sandbox with it, which would skip the grace period."""
    for member in members(pgid):
        if member.comm != "bwrap":
            try:
                os.kill(member.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def _supervise(
    argv: list[str],
    env: dict[str, str],
    cwd: str,
    log_path: Path,
    deadline: float,
    grace: float,
    progress: Progress | None,
) -> tuple[SolveEnd, int | None, str]:
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    pump = threading.Thread(target=_pump, args=(proc.stdout.fileno(), log_path), daemon=True)
    pump.start()
    timed_out = False
    try:
        while proc.poll() is None:
            left = deadline - time.time()
            if left <= 0:
                timed_out = True
                break
            if progress:
                progress(left)
            try:
                proc.wait(timeout=min(left, 1.0))
            except subprocess.TimeoutExpired:
                pass
    except BaseException:  # Ctrl-C or a harness error: the agent must not outlive the harness
        signal_group(proc.pid, signal.SIGKILL)
        raise
    detail = ""
    if timed_out:
        _terminate_agent(proc.pid)
        try:
            proc.wait(timeout=grace)
            detail = "stopped by SIGTERM at the deadline"
        except subprocess.TimeoutExpired:
            signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
            detail = f"killed with SIGKILL {grace:.0f}s after the deadline"
    # Leftover background processes of the agent's group do not outlive solve.
    signal_group(proc.pid, signal.SIGKILL)
    pump.join(timeout=5)
    code = proc.returncode
    if timed_out:
        return SolveEnd.deadline, code, detail
    if code == 0:
        return SolveEnd.exited, code, ""
    reason = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
    return SolveEnd.crashed, code, reason
