"""solve: run the agent in its sandbox with the workspace as working directory, and enforce the
deadline: SIGTERM to the agent's whole process group at the deadline, SIGKILL after the grace
period. Records why solve ended: exited, crashed, deadline or failed_to_start.

With --continue-until-deadline, an agent that exits cleanly with more than the margin left is
resumed in the same session (same sandbox and proxies) with a fixed message, until the deadline; each
run of its process is an attempt in run.json. When solve ends, the output log becomes
agent/trace.jsonl and agent/summary.json, and what ended the agent's work on its side (provider
errors, auth, spend limits, a hung CLI) is classified."""

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
from posttrainbench.agents.base import Agent, AgentContext, AgentStartError
from posttrainbench.lifecycle.prepare import populate_workspace, protected_paths
from posttrainbench.lifecycle.session import Session, agent_context, open_session, resolve_sandbox
from posttrainbench.process_group import members, signal_group
from posttrainbench.redact import Redactor
from posttrainbench.rundir import RunDir, hash_tree
from posttrainbench.sandbox.cache_layer import CacheLayer
from posttrainbench.specs import SolveAttempt, SolveEnd, SolveResult, utcnow
from posttrainbench.traces import summary as trace_summary

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
        layer, gpu_ids, network, setup = None, [], {}, {}
        attempts: list[SolveAttempt] = []
        idle_at_deadline = False
        try:
            agent.preflight(ctx)
            agent.prepare(ctx)
            setup = agent.setup(ctx)
            with open_session(run, record, agent, ctx, agent.command(ctx), box, run.agent_dir) as session:
                layer, gpu_ids = session.layer, session.plan.gpus
                redactor = redactor.extended(session.services.secrets)
                attempts, end, code, detail, idle_at_deadline = _run_attempts(
                    session, agent, ctx, run, deadline, progress, redactor
                )
                network = session.services.summary()
        except (AgentStartError, OSError) as e:
            end, code, detail = SolveEnd.failed_to_start, None, redactor(str(e))
            run.agent_log.write_text(f"[{_stamp()}] failed to start: {detail}\n")
        layer = layer or CacheLayer(settings.model_cache(), run.agent_dir)
        layer.evidence(run.agent_dir / "downloads.json")
        redactor.tree(run.agent_dir, skip=[layer.root])
        redactor.tree(run.workspace)
        lines = list(trace_summary.log_lines(run.agent_log))  # read once, after redaction
        events, _ = trace_summary.build(
            spec.agent,
            run.agent_dir,
            lines,
            attempts,
            spec.budget_seconds,
            registry.trace_parser(spec.agent),
            setup.get("model"),
        )
        stamps = [t for t, _ in lines if t]
        silent_for = deadline - (trace_summary.epoch(stamps[-1]) if stamps else 0.0)
        failure = None
        if end != SolveEnd.failed_to_start:
            hung = (
                end == SolveEnd.deadline and idle_at_deadline and silent_for >= trace_summary.HUNG_SILENCE_S
            )
            failure = trace_summary.agent_failure(events, [text for _, text in lines[-40:]], hung)
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
            attempts=attempts,
            agent_setup=setup,
            agent_failure=failure,
        )
        record = run.load()
        record.solve, record.sandbox = result, box.name
        run.save(record)
        return result


# An agent that ends this many resumed sessions in a row, each within QUICK_EXIT_S, is not resumed
# again: it has stopped working, and each resume costs a model call.
MAX_QUICK_RESUMES = 3
QUICK_EXIT_S = 60


def _run_attempts(
    session: Session,
    agent: Agent,
    ctx: AgentContext,
    run: RunDir,
    deadline: float,
    progress: Progress | None,
    redactor: Redactor,
) -> tuple[list[SolveAttempt], SolveEnd, int | None, str, bool]:
    """The agent's first run, then (--continue-until-deadline) its continuations; returns the
    attempts and how the last one ended."""
    spec = run.load().spec
    attempts: list[SolveAttempt] = []
    argv, message = session.argv, None
    while True:
        started_at, t0 = utcnow(), time.monotonic()
        end, code, detail, idle = supervise(
            argv,
            session.env,
            session.plan.workdir,
            run.agent_log,
            deadline,
            spec.grace_seconds,
            progress,
            redactor,
        )
        seconds = round(time.monotonic() - t0, 2)
        attempts.append(
            SolveAttempt(started_at=started_at, seconds=seconds, end=end, exit_code=code, message=message)
        )
        left = deadline - time.time()
        if not (spec.continue_until_deadline and agent.resumable and end == SolveEnd.exited):
            return attempts, end, code, detail, idle
        if left <= spec.continue_margin_minutes * 60:
            return attempts, end, code, detail, idle
        resumed = attempts[1:][-MAX_QUICK_RESUMES:]
        if len(resumed) == MAX_QUICK_RESUMES and all(a.seconds < QUICK_EXIT_S for a in resumed):
            detail = (
                f"not resumed again: the last {MAX_QUICK_RESUMES} resumed sessions each ended within "
                f"{QUICK_EXIT_S} s"
            )
            return attempts, end, code, detail, idle
        message = continuation_message(left)
        argv = session.wrap(agent.resume_command(ctx, last_session_id(spec.agent, run.agent_log), message))


def continuation_message(seconds_left: float) -> str:
    """The same words for every agent, so that persistence is not confounded with the scaffold."""
    hours, minutes = divmod(int(seconds_left // 60), 60)
    return (
        f"You still have {hours}h {minutes:02d}m remaining. Time remains: please continue improving your "
        "result and maximize performance. The final model must be in final_model/ when time runs out."
    )


def last_session_id(agent: str, log: Path) -> str | None:
    """The agent CLI's session to resume, from its trace so far (None: resume its last session)."""
    parser = registry.trace_parser(agent)
    if parser is None:
        return None
    ids = [e.session_id for e in parser(trace_summary.log_lines(log)) if e.kind == "session" and e.session_id]
    return ids[-1] if ids else None


def _stamp() -> str:
    return datetime.now(UTC).strftime(trace_summary.STAMP_FORMAT)


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


# Processes that are the agent's own machinery, not work it started: the sandbox, the network
# bridge, and the CLIs themselves (node runs Claude Code, Gemini CLI and the codex launcher).
MACHINERY = {"bwrap", "node", "claude", "codex", "gemini", "opencode", "bash", "sh"}


def _idle(pgid: int) -> bool:
    """True when nothing but the agent's machinery is running (no training, no tool command)."""
    for member in members(pgid):
        try:
            cmdline = Path(f"/proc/{member.pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if member.comm not in MACHINERY and b"posttrainbench.sandbox.bridge" not in cmdline:
            return False
    return True


def _terminate_agent(pgid: int) -> None:
    """SIGTERM to every process of the agent's group except the sandbox's own bwrap processes:
    bwrap dies on SIGTERM and takes the whole sandbox with it, which would skip the grace period."""
    for member in members(pgid):
        if member.comm != "bwrap":
            try:
                os.kill(member.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def supervise(
    argv: list[str],
    env: dict[str, str],
    cwd: str,
    log_path: Path,
    deadline: float,
    grace: float,
    progress: Progress | None,
    redact: Callable[[str], str],
) -> tuple[SolveEnd, int | None, str, bool]:
    """Run one attempt. Returns how it ended, the exit code, a detail, and whether nothing but the
    agent's machinery was running at the deadline."""
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
    idle = False
    if timed_out:
        idle = _idle(proc.pid)
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
        return SolveEnd.deadline, code, detail, idle
    if code == 0:
        return SolveEnd.exited, code, "", False
    reason = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
    return SolveEnd.crashed, code, reason, False
