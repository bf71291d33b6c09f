"""check: the integrity checks over what the agent left; writes integrity.json."""

from __future__ import annotations

from collections.abc import Callable

from posttrainbench import tasks
from posttrainbench.integrity.contamination import check_contamination
from posttrainbench.integrity.tamper import check_tamper
from posttrainbench.lifecycle.prepare import protected_paths
from posttrainbench.rundir import RunDir, write_json_atomic
from posttrainbench.specs import CheckResult, Verdict


def _guarded(name: str, fn: Callable[[], CheckResult]) -> CheckResult:
    try:
        return fn()
    except Exception as e:
        return CheckResult(
            name=name, verdict=Verdict.error, summary=f"check crashed: {type(e).__name__}: {e}"
        )


def check(run: RunDir) -> list[CheckResult]:
    with run.stage("check"):
        record = run.load()
        task = tasks.get(record.spec.task)
        before = record.solve.protected_before if record.solve else {}
        results = [
            _guarded("evaluator_tamper", lambda: check_tamper(run.workspace, before)),
            _guarded(
                "contamination_exact",
                lambda: check_contamination(
                    run.workspace,
                    task.contamination_keys(task.data()),
                    exclude=set(protected_paths(task.info.name)),
                ),
            ),
        ]
        write_json_atomic(run.integrity_file, {"checks": [r.model_dump(mode="json") for r in results]})
        record.checks = results
        run.save(record)
        return results
