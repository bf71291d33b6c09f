"""solve: run the agent in its sandbox with the workspace as working directory, and enforce the
deadline: SIGTERM to the agent's whole process group at the deadline, SIGKILL after the grace
period. Records why solve ended: exited, crashed, deadline or failed_to_start."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from posttrainbench import settings
from posttrainbench.agents import registry
from posttrainbench.agents.base import AgentStartError
from posttrainbench.lifecycle.prepare import populate_workspace, protected_paths
from posttrainbench.lifecycle.session import agent_context, open_session, resolve_sandbox
from posttrainbench.process_group import members, signal_group
from posttrainbench.redact import Redactor
from posttrainbench.rundir import RunDir, hash_tree
from posttrainbench.sandbox.cache_layer import CacheLayer
from posttrainbench.specs import SolveEnd, SolveResult, utcnow

Progress = Callable[[float], None]


def solve(run: RunDir, progress: Progress | None = None) -> SolveResult:
    with run.stage("solve"):
        record = run.load()
        spec = record.spec
        agent = registry.get(spec.agent)
        box = resolve_sandbox(record)
        deadline = time.time() + spec.budget_seconds
        populate_workspace(run, spec, deadline)  # pristine task files on a re-run; the real deadline
        ctx = agent_context(run, record, deadline)
        protected = hash_tree(run.workspace, protected_paths(spec.task))
        started_at, t0 = utcnow(), time.monotonic()
        run.agent_dir.mkdir(exist_ok=True)
        redactor = Redactor.from_environment()
        layer, gpu_ids, network = None, [], {}
        try:
            agent.preflight(ctx)
            with open_session(run, record, agent, ctx, agent.command(ctx), box, run.agent_dir) as session:
                layer, gpu_ids = session.layer, session.plan.gpus
                redactor = Redactor.from_environment(extra=session.services.secrets)
                end, code, detail = _supervise(
                    session.argv, session.env, session.plan.workdir, run.agent_log, deadline,
                    spec.grace_seconds, progress, redactor,
                )  # fmt: skip
                network = session.services.summary()
        except (AgentStartError, OSError) as e:
            end, code, detail = SolveEnd.failed_to_start, None, redactor(str(e))
            run.agent_log.write_text(f"[{_stamp()}] failed to start: {detail}\n")
        layer = layer or CacheLayer(settings.model_cache(), run.agent_dir)
        layer.evidence(run.agent_dir / "downloads.json")
        redactor.tree(run.agent_dir, skip=[layer.root])
        redactor.tree(run.workspace)
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
            gpus=gpu_ids,
            network=network,
        )
        record = run.load()
        record.solve, record.sandbox = result, box.name
        run.save(record)
        return result


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pump(fd: int, log_path: Path, redact: Callable[[str], str]) -> None:
    """Copy the agent's output to the log, redacted, each line prefixed with a UTC timestamp. A line
    that redraws itself with carriage returns (progress bars) is logged as a terminal would show it."""

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
                log.write(f"[{_stamp()}] {redact(shown(line))}\n")
            log.flush()
        if pending.strip():
            log.write(f"[{_stamp()}] {redact(shown(pending))}\n")


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
    redact: Callable[[str], str],
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
    pump = threading.Thread(target=_pump, args=(proc.stdout.fileno(), log_path, redact), daemon=True)
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
