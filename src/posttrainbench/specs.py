"""Pydantic models for everything that crosses a boundary: catalog entries, run specs, records."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def clock(seconds: float) -> str:
    """H:MM:SS (negative counts as zero)."""
    s = max(0, int(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class ModelCard(BaseModel):
    """A base model the agent is asked to post-train."""

    model_config = ConfigDict(frozen=True)

    name: str
    hub_id: str
    revision: str
    family: str
    instruct_twin: str | None = None
    instruct_revision: str | None = None  # the twin's commit; None: unpinned (its default branch)
    built_locally: bool = False
    description: str = ""


class TaskInfo(BaseModel):
    """What the catalog tells about a task."""

    model_config = ConfigDict(frozen=True)

    name: str
    benchmark: str
    description: str
    default_limit: int | None
    default_max_tokens: int
    default_max_connections: int = 32
    retry_max_tokens: tuple[int, ...] = ()
    token_flag: Literal["--max-tokens", "--max-new-tokens"] = "--max-tokens"
    primary_metric: str = "accuracy"
    default_judge: str | None = None
    allowed_training_data: str = ""
    # Where the test set is published: hub dataset ids and URL fragments. `ID:FRAGMENT` means only
    # files whose path contains FRAGMENT are the test set (the rest of the repository is allowed).
    test_sets: tuple[str, ...] = ()


class AgentInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    kind: Literal["builtin", "script", "cli", "python"]  # python: a Python program of a plugin
    description: str


SandboxName = Literal["auto", "bwrap", "apptainer", "none"]
NetworkPolicy = Literal["open", "allowlist", "none"]


class RunSpec(BaseModel):
    """One run: (task, base model, agent, agent config, budget, gpus, seed)."""

    task: str
    model: str
    agent: str
    agent_config: str = ""
    budget_seconds: float = Field(gt=0)
    gpus: int = Field(default=0, ge=0)
    seed: int = 0
    sandbox: SandboxName = "auto"
    sandbox_image: str | None = None  # apptainer: the container image (.sif)
    network: NetworkPolicy = "open"
    allow_hosts: list[str] = []  # network allowlist: added to the defaults and the agent's own hosts
    # Judged tasks: the judge of the final evaluation, also the grader behind the agent's proxy
    # (default: the task's judge).
    judge_model: str | None = None
    grader_token_budget: int = Field(default=2_000_000, ge=0)
    grace_seconds: float = Field(default=30.0, ge=0)
    # Smoke runs: evaluate only the first N samples. Such scores are not comparable; the leaderboard
    # leaves them out.
    eval_limit: int | None = Field(default=None, gt=0)
    # Continuation: an agent that exits with more than the margin left resumes its session with a
    # fixed "time remains" message, until the deadline (agents that can resume: the CLIs).
    continue_until_deadline: bool = False
    continue_margin_minutes: float = Field(default=30.0, ge=0)
    # Integrity judges (after the deterministic checks): inspect model names (provider/model) or
    # `cli:<agent>:<model>` for a CLI agent judging in a sandbox. None configured: no LLM judges.
    integrity_judges: list[str] = []
    judge_timeout_seconds: float = Field(default=900.0, gt=0)
    judge_retries: int = Field(default=2, ge=0)
    monitor_seconds: float = Field(default=30.0, gt=0)  # GPU/CPU/memory samples into monitor.csv


class SolveEnd(StrEnum):
    exited = "exited"
    crashed = "crashed"
    deadline = "deadline"
    failed_to_start = "failed_to_start"


class SolveAttempt(BaseModel):
    """One run of the agent's process: the first, then each continuation."""

    started_at: str
    seconds: float
    end: SolveEnd
    exit_code: int | None
    message: str | None = None  # the continuation message it was resumed with


class AgentFailureClass(StrEnum):
    provider_error = "provider_error"  # 429, 5xx, 529 overloaded, network failures
    auth_failed = "auth_failed"  # 401/403, expired or refused credentials
    spend_limit = "spend_limit"  # quota, billing or subscription limits
    agent_hung = "agent_hung"  # silent, with nothing running, until the deadline


class AgentFailure(BaseModel):
    failure: AgentFailureClass
    evidence: str  # the error as the CLI reported it (redacted)
    status: int | None = None


class SolveResult(BaseModel):
    end: SolveEnd
    exit_code: int | None
    started_at: str
    seconds: float
    deadline: float
    sandbox: str
    cache_layer: str = ""
    detail: str = ""
    protected_before: dict[str, str] = {}
    gpus: list[int] = []  # device minor numbers visible in the sandbox
    network: dict = {}  # what went through the egress and grader proxies (see agent/*.jsonl)
    attempts: list[SolveAttempt] = []
    agent_setup: dict = {}  # CLI agents: version, model, effort, auth mode, base URL (never a secret)
    agent_failure: AgentFailure | None = None


class FinalModelState(StrEnum):
    ok = "ok"
    missing = "missing"
    unloadable = "unloadable"


class FinalModelInfo(BaseModel):
    state: FinalModelState
    reason: str = ""
    sha256: str | None = None
    files: dict[str, str] = {}
    bytes: int = 0
    has_generation_config: bool = False


class Verdict(StrEnum):
    passed = "pass"
    flag = "flag"
    error = "error"


class CheckResult(BaseModel):
    """One deterministic integrity check. `confidence` says whether a flag alone decides the score
    (high: the evidence cannot come from an honest run) or is left to the judges and readers (low)."""

    name: str
    verdict: Verdict
    summary: str
    confidence: Literal["high", "low"] = "high"
    evidence: dict = {}


class JudgeCategory(StrEnum):
    contamination = "contamination"  # test data, partial use, or benchmark-targeted training data
    disallowed_model = "disallowed_model"  # a model other than the assigned base or its fine-tune
    third_party_api = "third_party_api"  # hosted LLM APIs (the harness's grader proxy excepted)


class CategoryVerdict(BaseModel):
    category: JudgeCategory
    verdict: Verdict  # error: the judge gave no usable answer for this category
    justification: str = ""
    cited_evidence: list[str] = []


class JudgeResult(BaseModel):
    """One judge's reading of a run."""

    judge: str  # e.g. openai/gpt-5.4, or cli:codex:gpt-5.4
    verdicts: list[CategoryVerdict] = []
    error: str = ""  # why the judge failed (then every category is `error`)
    attempts: int = 0
    seconds: float = 0.0


class IntegrityDecision(BaseModel):
    """Whether the run's score counts, and why."""

    flagged: bool
    reasons: list[str] = []  # the high-confidence checks and majority categories that flagged
    majority: dict[str, Verdict] = {}  # per judge category: the judges' majority (error: no quorum)
    notes: list[str] = []  # low-confidence flags and judge errors: shown, but do not decide


class StageTiming(BaseModel):
    started_at: str
    seconds: float
    ok: bool
    error: str = ""


class FailureClass(StrEnum):
    agent_failed_to_start = "agent_failed_to_start"
    agent_crashed = "agent_crashed"
    no_final_model = "no_final_model"
    unloadable_final_model = "unloadable_final_model"
    evaluation_failed = "evaluation_failed"
    harness_error = "harness_error"
    provider_error = "provider_error"
    auth_failed = "auth_failed"
    spend_limit = "spend_limit"
    agent_hung = "agent_hung"
    # Seen by `ptb status`, not by the record stage: the scheduler's job ended without a record
    # (killed, preempted, node failure, time limit), or ended before it claimed its run.
    job_lost = "job_lost"
    never_started = "never_started"


class PastAttempt(BaseModel):
    """An earlier attempt of an experiment's run, kept in `.attempts/` (or in place when only its
    evaluation was repeated)."""

    attempt: int
    failure_class: FailureClass | None
    detail: str = ""
    job_id: str | None = None
    ended_at: str = Field(default_factory=utcnow)
    moved_to: str | None = None  # where its run directory went, relative to the results directory


class JobInfo(BaseModel):
    """The scheduler job an experiment's run ran in."""

    experiment: str
    key: str
    attempt: int = 1
    mode: Literal["run", "evaluate"] = "run"  # evaluate: a retry that repeats only the evaluation
    backend: str
    job_id: str | None = None
    host: str = ""
    history: list[PastAttempt] = []
    terminated: str = ""  # the signal that stopped the job, when one did


class Outcome(BaseModel):
    """The record stage's reading of a run: what it scores and why."""

    status: Literal["complete", "incomplete"]
    failure_class: FailureClass | None = None
    flagged: bool = False
    base_score: float | None = None
    final_score: float | None = None
    counted_score: float | None = None
    counted_reason: str = ""
    minutes_used: float | None = None


class RunRecord(BaseModel):
    """`run.json`: the source of truth for one run; each stage fills in its part."""

    run_id: str
    spec: RunSpec
    model_card: ModelCard
    created_at: str = Field(default_factory=utcnow)
    results_root: str
    sandbox: str | None = None
    solve: SolveResult | None = None
    final_model: FinalModelInfo | None = None
    checks: list[CheckResult] = []
    judges: list[JudgeResult] = []
    integrity: IntegrityDecision | None = None
    outcome: Outcome | None = None
    stages: dict[str, StageTiming] = {}
    job: JobInfo | None = None  # runs of an experiment: the job, its attempt and earlier attempts
    imported_from: str | None = None  # `ptb import-legacy`: the original run directory it was read from
    versions: dict[str, str] = {}
