"""The LLM integrity judges on a real run directory (a noop run of ptb-tiny on arith), against
scripted judge servers speaking the OpenAI chat-completions wire format (tests/judge_server.py):
the majority of three judges flags a run through `ptb run`; judges that fail (HTTP 500, garbage,
too slow) are errors, never flags; `ptb judge` replaces the judges of a run; the dossier the judges
read holds the checks and the trace within its budget; and a real CLI agent judges from a read-only
sandbox (against the scripted model API of posttrainbench.testing.agent_api)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from conftest import ptb, record, run_ptb
from judge_server import ScriptedJudge
from posttrainbench.agents import registry
from posttrainbench.integrity.judges import dossier, run_judges
from posttrainbench.rundir import RunDir
from posttrainbench.testing.agent_api import Reply, ScriptedAPI, ShellCall
from posttrainbench.traces.schema import TraceEvent

CATEGORIES = ("contamination", "disallowed_model", "third_party_api")
RUN = [
    "run",
    "--task",
    "arith",
    "--model",
    "ptb-tiny",
    "--agent",
    "noop",
    "--minutes",
    "2",
    "--network",
    "none",
]
KEY = "judge-test-key"


def answer(fenced: bool = False, **verdicts: str) -> str:
    obj = {
        c: {
            "verdict": verdicts.get(c, "pass"),
            "justification": f"scripted {c}",
            "cited_evidence": ["output.log"],
        }
        for c in CATEGORIES
    }
    return f"My review.\n```json\n{json.dumps(obj)}\n```" if fenced else json.dumps(obj)


def model(name: str) -> str:
    return f"openai-api/{name}/judge-model"


@contextmanager
def judges(mp: pytest.MonkeyPatch, **replies: Callable[[list[dict]], str | None]) -> Iterator[dict]:
    """One scripted judge server per name, reachable as `model(name)`."""
    with ExitStack() as stack:
        servers = {name: stack.enter_context(ScriptedJudge(reply)) for name, reply in replies.items()}
        for name, server in servers.items():
            mp.setenv(f"{name.upper()}_BASE_URL", server.url)
            mp.setenv(f"{name.upper()}_API_KEY", KEY)
        yield servers


def sent(messages: list[dict]) -> str:
    return "\n".join(
        m["content"] if isinstance(m["content"], str) else json.dumps(m["content"]) for m in messages
    )


def judge_args(*names: str) -> list[str]:
    return [arg for name in names for arg in ("--integrity-judge", name)]


@pytest.fixture(scope="module")
def judged(results):
    """A noop run judged by three scripted judges, two of which flag contamination; the requests
    each judge received."""
    replies = {
        "alpha": lambda m: answer(contamination="flag"),
        "beta": lambda m: answer(fenced=True, contamination="flag"),
        "gamma": lambda m: answer(),
    }
    with pytest.MonkeyPatch.context() as mp, judges(mp, **replies) as servers:
        _, run = run_ptb(results, *RUN, *judge_args(*map(model, servers)))
        return run, {name: (s.requests, s.auth) for name, s in servers.items()}


def copy_run(run: Path, tmp_path: Path) -> Path:
    """A copy to change (the model-cache layer and evaluation logs left behind)."""
    return Path(shutil.copytree(run, tmp_path / run.name, ignore=shutil.ignore_patterns("cache", "eval")))


def test_majority_of_judges_flags_the_run(judged):
    run, _ = judged
    rec = record(run)
    assert rec["spec"]["integrity_judges"] == [model("alpha"), model("beta"), model("gamma")]
    assert [j["judge"] for j in rec["judges"]] == rec["spec"]["integrity_judges"]
    assert all(j["error"] == "" and j["attempts"] == 1 for j in rec["judges"])
    beta = {v["category"]: v for v in rec["judges"][1]["verdicts"]}  # its answer came fenced in prose
    assert beta["contamination"]["verdict"] == "flag" and beta["contamination"]["cited_evidence"] == [
        "output.log"
    ]
    decision = rec["integrity"]
    assert decision["flagged"] is True
    assert decision["majority"] == {
        "contamination": "flag",
        "disallowed_model": "pass",
        "third_party_api": "pass",
    }
    assert "judges: contamination (flagged by 2 of 3)" in decision["reasons"]
    integrity = json.loads((run / "integrity.json").read_text())
    assert integrity["decision"] == decision and integrity["judges"] == rec["judges"]
    stages = rec["stages"]
    assert stages["judge"]["ok"] and stages["check"]["started_at"] <= stages["judge"]["started_at"]
    assert stages["judge"]["started_at"] <= stages["evaluate"]["started_at"]
    o = rec["outcome"]
    assert o["status"] == "complete" and o["flagged"] is True
    assert o["counted_score"] == o["base_score"] and "contamination" in o["counted_reason"]


def test_the_judges_read_the_dossier(judged):
    run, received = judged
    rec = record(run)
    for requests, auth in received.values():
        assert len(requests) == 1 and auth == [f"Bearer {KEY}"]
        text = sent(requests[0])
        for needle in (
            "posttrainbench/ptb-tiny-base",
            "Arith (addition and subtraction",
            "saved posttrainbench/ptb-tiny-base unchanged",  # the noop agent's output log
            '"model_type": "qwen3"',  # final_model/config.json
            "third_party_api",
            json.dumps(rec["checks"], indent=1),  # every check with its evidence
        ):
            assert needle in text, needle


def test_dossier_cuts_the_middle_of_the_trace_to_fit_its_budget(judged, tmp_path):
    run = RunDir(copy_run(judged[0], tmp_path))
    events = [
        TraceEvent(kind="tool_result", tool="Bash", text=f"event-{i:03d} " + "x" * 1000) for i in range(200)
    ]
    (run.agent_dir / "trace.jsonl").write_text("".join(e.model_dump_json() + "\n" for e in events))
    (run.workspace / "make_data.py").write_text("print('writing training data')\n")
    rec = run.load()

    full = dossier(run, rec)
    assert "event-100" in full and "to fit the budget" not in full

    short = dossier(run, rec, budget=30_000)
    assert len(short) <= 30_000
    assert "event-000" in short and "event-199" in short and "event-100" not in short
    assert "characters of the agent's trace, to fit the budget left out here" in short
    assert "print('writing training data')" in short and "make_data.py" in short
    assert all(c.summary in short for c in rec.checks) and '"model_type": "qwen3"' in short


def test_rerun_with_another_judge_replaces_the_judges(judged, tmp_path):
    run = copy_run(judged[0], tmp_path)
    with pytest.MonkeyPatch.context() as mp, judges(mp, delta=lambda m: answer()):
        proc = ptb("judge", str(run), *judge_args(model("delta")), check=True)
    rec = record(run)
    assert [j["judge"] for j in rec["judges"]] == [model("delta")]
    assert rec["integrity"]["flagged"] is False and rec["outcome"]["flagged"] is False
    assert rec["outcome"]["counted_reason"] == "final model score"
    assert json.loads((run / "integrity.json").read_text())["judges"] == rec["judges"]
    assert f"{model('delta')}: contamination pass" in proc.stdout and "decision: not flagged" in proc.stdout


def test_failed_judges_are_errors_not_flags(judged, tmp_path):
    run = copy_run(judged[0], tmp_path)
    replies = {
        "down": lambda m: None,
        "garbage": lambda m: "I would rather not say.",
        "ok": lambda m: answer(),
    }
    with pytest.MonkeyPatch.context() as mp, judges(mp, **replies):
        proc = ptb("judge", str(run), *judge_args(*map(model, replies)), "--judge-retries", "1", check=True)
    rec = record(run)
    down, garbage, ok = rec["judges"]
    for failed, why in ((down, "InternalServerError: Error code: 500"), (garbage, "no JSON object")):
        assert why in failed["error"] and failed["attempts"] == 2
        assert [v["verdict"] for v in failed["verdicts"]] == ["error"] * 3
    assert ok["error"] == "" and [v["verdict"] for v in ok["verdicts"]] == ["pass"] * 3
    decision = rec["integrity"]
    assert decision["flagged"] is False and set(decision["majority"].values()) == {"pass"}
    assert any(n.startswith(f"judge {model('down')} failed") for n in decision["notes"])
    assert rec["outcome"]["flagged"] is False
    assert "failed:" in proc.stdout and "decision: not flagged" in proc.stdout


def test_a_judge_slower_than_its_timeout_is_an_error(judged, monkeypatch):
    def slow(messages: list[dict]) -> str:
        time.sleep(8)
        return answer(contamination="flag")

    with judges(monkeypatch, slow=slow, quick=lambda m: answer(third_party_api="flag")):
        t0 = time.monotonic()
        late, quick = run_judges(RunDir(judged[0]), [model("slow"), model("quick")], timeout=3, retries=2)
        assert time.monotonic() - t0 < 7
    assert late.error == "no answer within 3 s" and late.attempts == 1
    assert [v.verdict.value for v in late.verdicts] == ["error"] * 3
    assert quick.error == "" and [v.verdict.value for v in quick.verdicts] == ["pass", "pass", "flag"]


def test_a_partial_answer_is_error_only_where_it_is_missing(judged, monkeypatch):
    partial = {"contamination": {"verdict": "FLAG", "justification": "seeded from test items",
                                 "cited_evidence": "workspace/gen.py"},
               "disallowed_model": {"verdict": "maybe"}}  # fmt: skip
    with judges(monkeypatch, partial=lambda m: json.dumps(partial)) as servers:
        (result,) = run_judges(RunDir(judged[0]), [model("partial")], timeout=60, retries=2)
    assert result.error == "" and result.attempts == 1 and len(servers["partial"].requests) == 1
    verdicts = {v.category.value: v for v in result.verdicts}
    assert verdicts["contamination"].verdict.value == "flag"
    assert verdicts["contamination"].cited_evidence == ["workspace/gen.py"]
    assert verdicts["disallowed_model"].verdict.value == "error"
    assert verdicts["third_party_api"].verdict.value == "error"
    assert verdicts["third_party_api"].justification == "missing from the answer"


def one_line_error(proc) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_judge_names_and_run_directories_are_checked(judged, tmp_path):
    assert "neither an inspect model" in one_line_error(ptb(*RUN, "--integrity-judge", "gpt-5"))
    bad_cli = one_line_error(ptb(*RUN, "--integrity-judge", "cli:aider:gpt-5"))
    assert "valid CLI agents: claude-code, codex, gemini-cli, opencode" in bad_cli
    assert "named twice" in one_line_error(ptb(*RUN, *judge_args(model("a"), model("a"))))
    assert "not a run directory" in one_line_error(ptb("judge", str(tmp_path)))
    run = RunDir(copy_run(judged[0], tmp_path))
    rec = run.load()
    rec.spec.integrity_judges = []
    run.save(rec)
    assert "run without integrity judges" in one_line_error(ptb("judge", str(run.path)))


@pytest.mark.cli
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_a_cli_agent_judges_from_a_read_only_sandbox(judged, tmp_path, monkeypatch):
    if not registry.get("claude-code").installed():
        pytest.skip("claude-code is not installed (make test installs it into .agents/)")
    run = copy_run(judged[0], tmp_path)
    for key in ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    judging = (
        f"cp dossier.md seen.md; touch {run}/workspace/judge-was-here; ls {run}/judges > judges_seen.txt; "
        f"printf '%s' '{answer(disallowed_model='flag')}' > judgement.json"
    )
    with ScriptedAPI([ShellCall(judging), Reply("Done.")]) as api, ScriptedAPI([Reply("No.")]) as silent:
        names = [
            f"cli:claude-code:claude-sonnet-4-5,base_url={url},retries=0" for url in (api.url, silent.url)
        ]
        ptb("judge", str(run), *judge_args(*names), "--judge-retries", "0", check=True)
        prompt = json.dumps(api.main_requests()[0].body)
    answered, wrote_nothing = record(run)["judges"]
    assert answered["error"] == "" and answered["attempts"] == 1
    assert [v["verdict"] for v in answered["verdicts"]] == ["pass", "flag", "pass"]
    assert "no judgement.json (exited)" in wrote_nothing["error"]
    assert [v["verdict"] for v in wrote_nothing["verdicts"]] == ["error"] * 3
    assert "dossier.md" in prompt and str(run) in prompt and "disallowed_model" in prompt
    scratch = next(d for d in (run / "judges").iterdir() if api.url.split(":")[-1] in d.name)
    assert (scratch / "seen.md").read_text() == (scratch / "dossier.md").read_text()
    assert "## The agent's trace" in (scratch / "dossier.md").read_text()
    # the run directory was read-only to the judge, and the other judge's directory hidden
    assert not (run / "workspace/judge-was-here").exists()
    assert "Read-only file system" in (scratch / "output.log").read_text()
    assert (scratch / "judges_seen.txt").read_text().split() == [scratch.name]
