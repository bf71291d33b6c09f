"""prepare: create the run directory, the agent's workspace, timer.sh and prompt.txt."""

from __future__ import annotations

import os
import secrets
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from posttrainbench import models, prompts, settings, tasks
from posttrainbench.agents import registry
from posttrainbench.errors import UserError
from posttrainbench.integrity import ngrams
from posttrainbench.integrity.contamination import task_index
from posttrainbench.rundir import RunDir
from posttrainbench.specs import RunRecord, RunSpec

# The contamination checker the judges' evidence comes from, for the agent to check its own data
# against hashed text windows of the test set (the test text itself is not given).
TOOL_FILES = ("tools/contamination_check.py", "tools/test_ngrams.npz")
TIMER = """#!/bin/sh
# Prints the time left for this run. Deadline (Unix seconds): {deadline}
left=$(( {deadline} - $(date +%s) ))
if [ "$left" -le 0 ]; then echo "Timer expired!"; exit 0; fi
printf 'Remaining time (hours:minutes): %d:%02d\\n' $(( left / 3600 )) $(( (left % 3600) / 60 ))
"""


def protected_paths(task_name: str) -> list[str]:
    """Workspace files the agent must not change (read-only in the sandbox; hashed around solve)."""
    task = tasks.get(task_name)
    templates = sorted(f"templates/{p.name}" for p in models.TEMPLATES_DIR.glob("*.jinja"))
    return sorted([*task.agent_files(), *templates, "timer.sh", *TOOL_FILES])


def write_timer(workspace: Path, deadline: float) -> None:
    timer = workspace / "timer.sh"
    if timer.exists():
        timer.chmod(0o644)
    timer.write_text(TIMER.format(deadline=int(deadline)))
    timer.chmod(0o555)


def new_run_id(spec: RunSpec) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{spec.task}__{spec.model}__{spec.agent}__{stamp}-{secrets.token_hex(2)}"


def check_writable(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create results directory {root}: {e.strerror}") from None
    if not root.is_dir() or not os.access(root, os.W_OK | os.X_OK):
        raise UserError(f"results directory {root} is not writable")


def validate(spec: RunSpec) -> None:
    """Fail on unknown names before anything is written."""
    tasks.get(spec.task)
    models.get(spec.model)
    registry.get(spec.agent)


def prepare(spec: RunSpec, results_root: Path, run_id: str | None = None) -> RunDir:
    """Create the run directory (RESULTS/RUN_ID; an experiment's job names its own, which may exist
    already holding only the job's files) and fill it."""
    validate(spec)
    check_writable(results_root)
    card = models.get(spec.model)
    models.snapshot(card, settings.model_cache())  # fail now, not inside the agent, if missing
    models.twin_snapshot(
        card, settings.model_cache()
    )  # built now for local models (the lineage check's candidate)
    task = tasks.get(spec.task)
    run = RunDir(results_root / (run_id or new_run_id(spec)))
    run.path.mkdir(parents=True, exist_ok=run_id is not None)
    if run.record_file.exists():
        raise UserError(f"{run.path} already holds a run (run.json)")
    record = RunRecord(
        run_id=run.path.name, spec=spec, model_card=card, results_root=str(results_root.resolve())
    )
    run.save(record)
    with run.stage("prepare"):
        populate_workspace(run, spec, deadline=time.time() + spec.budget_seconds)
        run.prompt_file.write_text(
            prompts.render(card, task.info, task.benchmark, spec.budget_seconds, spec.gpus)
        )
    return run


def populate_workspace(run: RunDir, spec: RunSpec, deadline: float) -> None:
    """(Re)create the task files and timer.sh in the workspace; the agent's own files are left alone."""
    task = tasks.get(spec.task)
    ws = run.workspace
    (ws / "templates").mkdir(parents=True, exist_ok=True)
    run.agent_home.mkdir(parents=True, exist_ok=True)
    for rel, src in task.agent_files().items():
        _install(src, ws / rel)
    for tpl in models.TEMPLATES_DIR.glob("*.jinja"):
        _install(tpl, ws / "templates" / tpl.name)
    _install(Path(ngrams.__file__), ws / TOOL_FILES[0])
    _install(task_index(spec.task).to_bytes(), ws / TOOL_FILES[1])
    write_timer(ws, deadline)


def _install(src: Path | str | bytes, dest: Path) -> None:
    """Install a file (a path to copy, or its text or bytes) read-only."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        dest.chmod(0o644)
    if isinstance(src, bytes):
        dest.write_bytes(src)
    elif isinstance(src, str):
        dest.write_text(src)
    else:
        shutil.copyfile(src, dest)
    dest.chmod(0o444)
