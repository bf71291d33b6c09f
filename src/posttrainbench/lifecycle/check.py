"""check: the deterministic integrity checks over what the agent left, each with its evidence;
then the decision (with the judges' verdicts when they have run) into integrity.json."""

from __future__ import annotations

from collections.abc import Callable

from posttrainbench import models, settings, tasks
from posttrainbench.agents import registry
from posttrainbench.integrity.api_use import check_api_use
from posttrainbench.integrity.contamination import check_contamination, task_index
from posttrainbench.integrity.downloads import check_downloads
from posttrainbench.integrity.lineage import check_lineage
from posttrainbench.integrity.notes import check_judge_notes
from posttrainbench.integrity.policy import decide
from posttrainbench.integrity.tamper import check_tamper
from posttrainbench.lifecycle.prepare import protected_paths
from posttrainbench.rundir import RunDir, write_json_atomic
from posttrainbench.sandbox.cache_layer import CacheLayer
from posttrainbench.specs import CheckResult, FinalModelState, RunRecord, Verdict


def _guarded(name: str, fn: Callable[[], CheckResult]) -> CheckResult:
    try:
        return fn()
    except Exception as e:
        return CheckResult(
            name=name, verdict=Verdict.error, summary=f"check crashed: {type(e).__name__}: {e}"
        )


def _lineage(run: RunDir, record: RunRecord) -> CheckResult:
    fm = record.final_model
    if fm is None or fm.state != FinalModelState.ok:
        state = fm.state.value if fm else "not collected"
        return CheckResult(
            name="model_lineage", verdict=Verdict.passed, summary=f"no loadable final model ({state})"
        )
    card, cache = record.model_card, settings.model_cache()
    twin = models.twin_snapshot(card, cache)
    candidates = {card.instruct_twin: twin} if card.instruct_twin and twin else {}
    return check_lineage(run.final_model, models.snapshot(card, cache), candidates)


def check(run: RunDir) -> list[CheckResult]:
    with run.stage("check"):
        record = run.load()
        spec = record.spec
        protected = protected_paths(spec.task)
        before = record.solve.protected_before if record.solve else {}
        data_roots = {
            "workspace": run.workspace,
            "model-cache": CacheLayer.root_of(run.agent_dir) / "upper",
            "home-cache": run.agent_home / ".cache",
        }
        trace = {"trace.jsonl": run.agent_dir / "trace.jsonl", "output.log": run.agent_log}
        results = [
            _guarded("evaluator_tamper", lambda: check_tamper(run.workspace, before, run.agent_dir)),
            _guarded("model_lineage", lambda: _lineage(run, record)),
            _guarded(
                "contamination",
                lambda: check_contamination(
                    task_index(spec.task), data_roots, trace, exclude={"workspace": set(protected)}
                ),
            ),
            _guarded(
                "downloads",
                lambda: check_downloads(
                    run.agent_dir / "downloads.json",
                    run.agent_dir,
                    record.model_card,
                    tasks.get(spec.task).info,
                ),
            ),
            _guarded(
                "third_party_api",
                lambda: check_api_use(
                    run.agent_dir,
                    run.workspace,
                    registry.get(spec.agent).network_hosts,
                    set(protected),
                    spec.network,
                ),
            ),
            _guarded(
                "judge_manipulation",
                lambda: check_judge_notes(run.workspace, run.final_model, run.agent_dir, set(protected)),
            ),
        ]
        record.checks = results
        save_integrity(run, record)
        return results


def save_integrity(run: RunDir, record: RunRecord) -> None:
    """Decide from the checks and judges in `record`; write integrity.json and run.json."""
    record.integrity = decide(record.checks, record.judges)
    write_json_atomic(
        run.integrity_file,
        {
            "decision": record.integrity.model_dump(mode="json"),
            "checks": [c.model_dump(mode="json") for c in record.checks],
            "judges": [j.model_dump(mode="json") for j in record.judges],
        },
    )
    run.save(record)
