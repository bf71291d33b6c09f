"""judge: the LLM integrity judges read the run after the deterministic checks; their verdicts and
the integrity decision taken again with them go into run.json and integrity.json. With no judges
configured (RunSpec.integrity_judges) the stage does nothing and leaves no trace in run.json."""

from __future__ import annotations

from posttrainbench.integrity.judges import run_judges
from posttrainbench.lifecycle.check import save_integrity
from posttrainbench.rundir import RunDir
from posttrainbench.specs import JudgeResult


def judge(
    run: RunDir,
    judges: list[str] | None = None,
    timeout: float | None = None,
    retries: int | None = None,
) -> list[JudgeResult]:
    """Run `judges` (default: the spec's) with the spec's timeout and retries unless given; their
    results replace the previous judges'."""
    spec = run.load().spec
    names = spec.integrity_judges if judges is None else judges
    if not names:
        return []
    with run.stage("judge"):
        results = run_judges(
            run,
            names,
            spec.judge_timeout_seconds if timeout is None else timeout,
            spec.judge_retries if retries is None else retries,
        )
        record = run.load()
        record.judges = results
        save_integrity(run, record)
        return results
