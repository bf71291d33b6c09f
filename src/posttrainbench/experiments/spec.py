"""The experiment file (TOML): which runs (agents x base models x tasks x seeds), with which settings,
on which backend, and where the results go. Validated before anything is submitted; every error names
the offending key (`matrix.tasks[1]`, `backend.partition`, `run.hours`)."""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from posttrainbench import models, tasks
from posttrainbench.agents import registry
from posttrainbench.errors import UserError
from posttrainbench.specs import FailureClass, RunSpec

# Settings a run takes from [run]; the matrix names the rest.
MATRIX_FIELDS = ("task", "model", "agent", "agent_config", "seed", "budget_seconds")
# Provider and infrastructure failures: worth another attempt. A run that used its budget or ended
# normally (crashed, hung, no final model) is not retried; auth and spend limits need a person first.
DEFAULT_RETRY_ON = (
    FailureClass.provider_error,
    FailureClass.harness_error,
    FailureClass.evaluation_failed,
    FailureClass.agent_failed_to_start,
    FailureClass.job_lost,
    FailureClass.never_started,
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentEntry(Strict):
    name: str
    config: str = ""
    # Names this (agent, config) in run keys and tables; needed when one agent appears twice.
    label: str | None = None

    @property
    def key(self) -> str:
        return self.label or self.name


class Matrix(Strict):
    tasks: list[str] = Field(min_length=1)
    models: list[str] = Field(min_length=1)
    seeds: list[int] = Field(default=[0], min_length=1)


class LocalBackend(Strict):
    kind: Literal["local"]
    # GPU slots to share out (device indices); default: CUDA_VISIBLE_DEVICES, else this machine's GPUs.
    gpus: list[int] | None = None
    # Runs at once (default: as many as the GPU slots hold; runs without GPUs: 1).
    max_parallel: int | None = Field(default=None, ge=1)


class ClusterBackend(Strict):
    # The python with posttrainbench installed, as the compute nodes see it (default: this one, for a
    # shared file system).
    python: str | None = None
    setup: list[str] = []  # shell lines run before the job (module load ..., source ...)
    # Time beyond the agent's budget for the evaluation (judges and grace are added on top).
    eval_hours: float = Field(default=2.0, ge=0)


class SlurmBackend(ClusterBackend):
    kind: Literal["slurm"]
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    cpus_per_task: int | None = Field(default=None, ge=1)
    mem: str | None = None  # e.g. "64G"
    directives: list[str] = []  # more #SBATCH options, e.g. "--constraint=h100"


class HTCondorBackend(ClusterBackend):
    kind: Literal["htcondor"]
    request_cpus: int = Field(default=8, ge=1)
    request_memory: str = "64GB"
    request_disk: str = "100GB"
    requirements: str | None = None  # a ClassAd expression
    container_image: str | None = None  # runs the job in the container universe
    getenv: str = "true"  # which of the submitter's variables the job gets (API keys live there)
    commands: dict[str, str] = {}  # more submit commands, e.g. {"+MaxRunningPrice": "100"}


Backend = Annotated[LocalBackend | SlurmBackend | HTCondorBackend, Field(discriminator="kind")]


class Paths(Strict):
    """Relative paths are taken from the experiment file's directory."""

    results: Path | None = None  # default: ptb-results/<name>
    model_cache: Path | None = None  # PTB_MODEL_CACHE for the runs
    agents_dir: Path | None = None  # PTB_AGENTS_DIR: where the CLI agents are installed
    ptb_home: Path | None = None  # PTB_HOME


class Retry(Strict):
    max_attempts: int = Field(default=3, ge=1)
    on: list[FailureClass] = list(DEFAULT_RETRY_ON)


class Experiment(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    matrix: Matrix
    agents: list[AgentEntry] = Field(min_length=1)
    run: dict[str, Any] = {}  # RunSpec settings plus hours/minutes; checked in model_validator
    backend: Backend = LocalBackend(kind="local")
    paths: Paths = Paths()
    retry: Retry = Retry()

    @model_validator(mode="after")
    def _names(self) -> Experiment:
        keys = [a.key for a in self.agents]
        for k in keys:
            if keys.count(k) > 1:
                raise ValueError(
                    f"two [[agents]] entries are both called '{k}'; give each a distinct `label`"
                )
        return self


class PlannedRun(BaseModel):
    """One run of the expanded matrix; `key` is its directory name under the results directory."""

    key: str
    spec: RunSpec


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", s).strip("-")


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _errors(path: Path, e: ValidationError, prefix: str = "") -> UserError:
    lines = []
    for err in e.errors():
        loc = tuple(p for p in err["loc"] if p not in ("local", "slurm", "htcondor"))
        where = _loc(((prefix,) if prefix else ()) + loc) or "(top level)"
        msg = "unknown key (check its spelling)" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"  {where}: {msg}")
    return UserError(f"{path}: invalid experiment\n" + "\n".join(lines))


def budget(run: dict[str, Any]) -> float:
    hours, minutes = run.get("hours"), run.get("minutes")
    if hours is None and minutes is None:
        hours = 10.0
    return float(hours or 0) * 3600 + float(minutes or 0) * 60


def load(path: Path) -> tuple[Experiment, list[PlannedRun]]:
    """Read, validate and expand an experiment file."""
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: no such experiment file") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: not valid TOML: {e}") from None
    raw.setdefault("name", _slug(path.stem))
    try:
        exp = Experiment.model_validate(raw)
    except ValidationError as e:
        raise _errors(path, e) from None
    return exp, expand(path, exp)


def expand(path: Path, exp: Experiment) -> list[PlannedRun]:
    settings = dict(exp.run)
    for key in MATRIX_FIELDS:
        if key in settings:
            raise UserError(f"{path}: run.{key}: set by the matrix, not in [run]")
    seconds = budget(settings)
    settings.pop("hours", None), settings.pop("minutes", None)
    unknown = sorted(set(settings) - set(RunSpec.model_fields))
    if unknown:
        raise UserError(f"{path}: run.{unknown[0]}: unknown key (check its spelling)")
    _names(path, exp)
    runs = []
    for task in exp.matrix.tasks:
        for model in exp.matrix.models:
            for agent in exp.agents:
                for seed in exp.matrix.seeds:
                    fields = dict(task=task, model=model, agent=agent.name, agent_config=agent.config)
                    try:
                        spec = RunSpec(**fields, seed=seed, budget_seconds=seconds, **settings)
                    except ValidationError as e:
                        raise _errors(path, e, "run") from None
                    key = f"{task}__{model}__{_slug(agent.key)}__s{seed}"
                    runs.append(PlannedRun(key=key, spec=spec))
    return runs


def _names(path: Path, exp: Experiment) -> None:
    checks = [
        ("matrix.tasks", exp.matrix.tasks, tasks.get),
        ("matrix.models", exp.matrix.models, models.get),
        ("agents", [a.name for a in exp.agents], registry.get),
    ]
    for where, names, get in checks:
        for i, name in enumerate(names):
            try:
                get(name)
            except UserError as e:
                raise UserError(f"{path}: {where}[{i}]: {e}") from None
    for where, values in (("matrix.tasks", exp.matrix.tasks), ("matrix.models", exp.matrix.models),
                          ("matrix.seeds", exp.matrix.seeds)):  # fmt: skip
        dup = next((v for v in values if values.count(v) > 1), None)
        if dup is not None:
            raise UserError(f"{path}: {where}: '{dup}' is listed twice")


def results_dir(path: Path, exp: Experiment) -> Path:
    root = exp.paths.results or Path("ptb-results") / exp.name
    return (path.parent / root).resolve()


def environment(path: Path, exp: Experiment) -> dict[str, str]:
    """PTB_* variables the jobs run with (absolute paths, so a node's working directory does not matter)."""
    names = {"model_cache": "PTB_MODEL_CACHE", "agents_dir": "PTB_AGENTS_DIR", "ptb_home": "PTB_HOME"}
    return {
        var: str((path.parent / value).resolve())
        for field, var in names.items()
        if (value := getattr(exp.paths, field)) is not None
    }


def time_limit_minutes(spec: RunSpec, eval_hours: float) -> int:
    """A scheduler's time limit covering the agent's budget, its grace, the judges, the evaluation and
    ten minutes of set-up."""
    judges = len(spec.integrity_judges) * spec.judge_timeout_seconds
    seconds = spec.budget_seconds + spec.grace_seconds + judges + eval_hours * 3600 + 600
    return math.ceil(seconds / 60)
