"""Import the original PostTrainBench harness's results tree (reference/original.md §6.1) as run
records, so that a leaderboard aggregated there can be reproduced here."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from posttrainbench import models
from posttrainbench.rundir import RunDir
from posttrainbench.specs import (
    CategoryVerdict,
    FailureClass,
    IntegrityDecision,
    JudgeCategory,
    JudgeResult,
    Outcome,
    RunRecord,
    RunSpec,
    Verdict,
)

# The original's aggregate_final reads the zero-shot scores from `baseline_zeroshot` (one version of it:
# `baseline`); the first one present gives the base scores.
BASELINE_METHODS = ("baseline_zeroshot", "baseline")
# Baselines have no agent phase: the original's standard budget and one GPU, as labels only.
BASELINE_SPEC = {"budget_seconds": 10 * 3600, "gpus": 1}
AGENTS = {"claude": "claude-code", "codex": "codex", "gemini": "gemini-cli", "opencode": "opencode"}
LEGACY_FILES = (
    "metrics.json",
    "time_taken.txt",
    "contamination_judgement.txt",
    "disallowed_model_judgement.txt",
)
# category -> (file, flagging line, passing line): the judge prompt's exact vocabulary (§3.1)
JUDGEMENTS = {
    JudgeCategory.contamination: (
        "contamination_judgement.txt",
        "contamination detected",
        "no contamination detected",
    ),
    JudgeCategory.disallowed_model: (
        "disallowed_model_judgement.txt",
        "disallowed use detected",
        "only allowed use detected",
    ),
}
# <AGENT>_<AGENT_CONFIG_SAFE>_<H>h[_<N>gpu]<EXPERIMENT_NAME>; the experiment name starts with "_"
METHOD_RE = re.compile(
    r"(?P<agent>[^_]+)_(?P<config>.+?)_(?P<hours>\d+(?:\.\d+)?)h(?:_(?P<gpus>\d+)gpu)?(?P<experiment>(?:_.*)?)"
)
SEED_RE = re.compile(r"_run(\d+)(?=_|$)")

BASE_MODELS = {name: card for name, card in models.MODELS.items() if not card.built_locally}
# the instruct id's bare name (as in the original's run dirs) -> its base model
INSTRUCT_TWINS = {
    card.instruct_twin.rsplit("/", 1)[-1]: name for name, card in BASE_MODELS.items() if card.instruct_twin
}


class ImportReport(BaseModel):
    imported: list[str] = []  # our run ids written
    skipped: dict[str, str] = {}  # legacy path (relative to the source) -> why


def _method_spec(method: str) -> dict | None:
    """RunSpec fields from an agent method's name; None if it does not parse."""
    m = METHOD_RE.fullmatch(method)
    if not m:
        return None
    seed = SEED_RE.search(m["experiment"])
    experiment = SEED_RE.sub("", m["experiment"], count=1) if seed else m["experiment"]
    config = m["config"] + (f"|{experiment.lstrip('_')}" if experiment else "")
    return {
        "agent": AGENTS.get(m["agent"], m["agent"]),
        "agent_config": config,
        "budget_seconds": float(m["hours"]) * 3600,
        "gpus": int(m["gpus"] or 1),
        "seed": int(seed[1]) if seed else 0,
    }


def _latest_runs(method_dir: Path, report: ImportReport) -> dict[tuple[str, str], Path]:
    """(task, bare model) -> the run dir with the highest integer cluster id, as aggregate_methods.py
    keeps it (aggregate_contamination.py compares them as strings; we do not follow that)."""
    found: dict[tuple[str, str], list[tuple[int, Path]]] = {}
    for run_dir in sorted(d for d in method_dir.iterdir() if d.is_dir()):
        rel = f"{method_dir.name}/{run_dir.name}"
        parts = run_dir.name.split("_")
        if len(parts) != 4 or not parts[3].isdigit():
            report.skipped[rel] = "unparseable name (expected <task>_<ORG>_<MODEL>_<CLUSTER_ID>)"
            continue
        task, _org, model, cluster = parts
        found.setdefault((task, model), []).append((int(cluster), run_dir))
    latest = {}
    for key, runs in found.items():
        newest, latest[key] = max(runs)
        for cluster, run_dir in runs:
            if cluster != newest:
                report.skipped[f"{method_dir.name}/{run_dir.name}"] = f"superseded by cluster id {newest}"
    return latest


def _score(run_dir: Path) -> float | None:
    """metrics.json["accuracy"] when it is a number."""
    try:
        data = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    acc = data.get("accuracy") if isinstance(data, dict) else None
    return float(acc) if isinstance(acc, int | float) and not isinstance(acc, bool) else None


def _minutes(run_dir: Path) -> float | None:
    """time_taken.txt (HH:MM:SS) in minutes."""
    try:
        h, m, s = (int(x) for x in (run_dir / "time_taken.txt").read_text().strip().split(":"))
    except (OSError, ValueError):
        return None
    return round((h * 3600 + m * 60 + s) / 60, 2)


def _failure(run_dir: Path, baseline: bool) -> FailureClass:
    """Why a run has no score, in aggregate_methods.py's order: "not avl.", "not stored", "ERR"."""
    if baseline:  # a baseline is only an evaluation
        return FailureClass.evaluation_failed
    if not (run_dir / "time_taken.txt").is_file():
        return FailureClass.harness_error
    if not (run_dir / "final_model").is_dir():
        return FailureClass.no_final_model
    return FailureClass.evaluation_failed


def _judge(run_dir: Path) -> JudgeResult:
    """The two one-line judgements, read as aggregate_contamination.py reads them (stripped, exact)."""
    verdicts = []
    for category, (name, flag, passed) in JUDGEMENTS.items():
        path = run_dir / name
        line = path.read_text(errors="replace").strip() if path.is_file() else None
        if line == flag:
            verdict, why = Verdict.flag, line
        elif line == passed:
            verdict, why = Verdict.passed, line
        else:
            verdict, why = Verdict.error, f"{name} missing" if line is None else f"{name} garbled: {line!r}"
        verdicts.append(CategoryVerdict(category=category, verdict=verdict, justification=why))
    return JudgeResult(judge="legacy:codex", verdicts=verdicts)


def _decision(judge: JudgeResult) -> IntegrityDecision:
    """The original's aggregate_final: a flag, or any judge error (rule b), counts as the base score."""
    reasons = [
        f"{v.category.value}: {v.justification}"
        + (" (the original counts a judge error as the base score)" if v.verdict == Verdict.error else "")
        for v in judge.verdicts
        if v.verdict != Verdict.passed
    ]
    return IntegrityDecision(
        flagged=bool(reasons), reasons=reasons, majority={v.category.value: v.verdict for v in judge.verdicts}
    )


def _record(
    run_id: str, spec: RunSpec, run_dir: Path, origin: str, base: float | None, baseline: bool, out: Path
) -> RunRecord:
    final = _score(run_dir)
    judges = [] if baseline else [_judge(run_dir)]
    decision = _decision(judges[0]) if judges else None
    failure = None if final is not None else _failure(run_dir, baseline)
    if decision and decision.flagged:
        counted, reason = base, f"flagged ({'; '.join(decision.reasons)}): counts as the base model"
    elif final is not None:
        counted, reason = final, "final model score"
    else:
        counted, reason = base, f"no final evaluation ({failure.value}): counts as the base model"
    newest = max((p.stat().st_mtime for p in run_dir.iterdir()), default=run_dir.stat().st_mtime)
    return RunRecord(
        run_id=run_id,
        spec=spec,
        model_card=models.get(spec.model),
        created_at=datetime.fromtimestamp(newest, UTC).isoformat(timespec="seconds"),
        results_root=str(out.resolve()),
        sandbox="none",
        judges=judges,
        integrity=decision,
        outcome=Outcome(
            status="complete" if final is not None else "incomplete",
            failure_class=failure,
            flagged=bool(decision and decision.flagged),
            base_score=base,
            final_score=final,
            counted_score=counted,
            counted_reason=reason,
            minutes_used=_minutes(run_dir),
        ),
        imported_from=origin,
    )


def _write(out: Path, record: RunRecord, run_dir: Path) -> bool:
    """Write the run directory, replacing an earlier import of it; False if another run holds it."""
    run = RunDir(out / record.run_id)
    if run.path.exists():
        try:
            ours = run.load().imported_from is not None
        except (OSError, ValueError):
            ours = False
        if not ours:
            return False
        shutil.rmtree(run.path)
    (run.path / "legacy").mkdir(parents=True)
    for name in LEGACY_FILES:
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, run.path / "legacy" / name)
    run.save(record)
    return True


def import_legacy(src: Path, out: Path) -> ImportReport:
    """Write one run directory `out/<task>__<model>__<agent>__legacy-<method>` per kept legacy run,
    with the original's judgement files, metrics.json and time_taken.txt copied into `legacy/`
    (final_model/ and task/ are never copied). Re-importing replaces earlier imports of the same id.

    Following the original's scripts (original.md §6.2, §6.4):
    - every subdirectory of `src` is a method; per (method, task, bare model) only the highest integer
      cluster id counts (aggregate_methods.py);
    - final score = metrics.json "accuracy"; without it the failure is, in aggregate_methods.py's
      order, harness_error ("not avl.": no time_taken.txt), no_final_model ("not stored"),
      evaluation_failed ("ERR"; always, for baselines);
    - the score counts as the base model's zero-shot score from `baseline_zeroshot/` (else
      `baseline/`) when there is no final score, a judge flagged, or a judgement file is missing or
      garbled (aggregate_final.py, rule b);
    - baseline dirs hold `zero-shot` runs (base models) and `instruct` runs (instruct ids, recorded
      under their base model); they have no judgements and are never flagged.

    Our own choices: agent methods' names give agent (claude -> claude-code, gemini -> gemini-cli),
    agent_config, budget, gpus and seed (`_runN`: the original's runs of one agent, §6.4). The rest of the experiment name is appended to
    agent_config after a `|` (`_final_v3` -> `<config>|final_v3`), so that differing experiments stay
    separate leaderboard entries where the original grouped methods by a hand-written map.
    """
    out.mkdir(parents=True, exist_ok=True)
    report = ImportReport()
    fields: dict[str, dict | None] = {}  # method -> its RunSpec fields (None: a baseline)
    latest: dict[str, dict[tuple[str, str], Path]] = {}
    for method_dir in sorted(d for d in src.iterdir() if d.is_dir()):
        method = method_dir.name
        fields[method] = None if method in BASELINE_METHODS else _method_spec(method)
        if method in BASELINE_METHODS or fields[method]:
            latest[method] = _latest_runs(method_dir, report)
        else:
            report.skipped[method] = (
                "unparseable method name (expected <AGENT>_<CONFIG>_<H>h[_<N>gpu]<EXPERIMENT>)"
            )
    zero_shot = next((latest[m] for m in BASELINE_METHODS if m in latest), {})
    base_scores = {key: _score(run_dir) for key, run_dir in zero_shot.items() if key[1] in BASE_MODELS}

    for method, runs in latest.items():
        baseline = fields[method] is None
        for (task, legacy_model), run_dir in sorted(runs.items()):
            origin = f"{method}/{run_dir.name}"
            if legacy_model in BASE_MODELS:
                model = legacy_model
                spec_fields = fields[method] or {"agent": "zero-shot", **BASELINE_SPEC}
            elif baseline and legacy_model in INSTRUCT_TWINS:
                model = INSTRUCT_TWINS[legacy_model]
                spec_fields = {"agent": "instruct", **BASELINE_SPEC}
            else:
                report.skipped[origin] = f"unknown model {legacy_model!r}" + (
                    " (neither a base model nor an instruct twin)" if baseline else " (not a base model)"
                )
                continue
            spec = RunSpec(task=task, model=model, sandbox="none", **spec_fields)
            run_id = f"{task}__{model}__{spec.agent}__legacy-{method}"
            record = _record(run_id, spec, run_dir, origin, base_scores.get((task, model)), baseline, out)
            if _write(out, record, run_dir):
                report.imported.append(run_id)
            else:
                report.skipped[origin] = f"{out / run_id} exists and is not an imported run"
    return report
