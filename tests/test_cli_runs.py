"""The four real CLI agents, end to end through `ptb run` in the real sandbox, against the scripted
API server (posttrainbench.testing.agent_api) that stands in for the model providers: the CLI runs a shell tool call
that creates final_model/ (the tiny base model) and a marker; the run completes; the trace holds that
call and exactly the token totals the server reported. Then continuation (an agent that stops early
is resumed in its session) and the failure classes of a 529 and a 401.

Needs the CLIs `make test` installs into .agents/ (PTB_AGENTS_DIR); skipped without them."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import ptb, record, run_ptb
from posttrainbench.agents import registry
from posttrainbench.testing.agent_api import Fail, Reply, ScriptedAPI, ShellCall, WireUsage
from posttrainbench.traces.schema import Usage
from test_trace_parsers import SHELL_TOOL, expected_usage

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

KEY_ENV = {"claude-code": "ANTHROPIC_API_KEY", "codex": "OPENAI_API_KEY", "gemini-cli": "GEMINI_API_KEY",
           "opencode": "OPENAI_API_KEY"}  # fmt: skip
MODEL = {
    "claude-code": "claude-sonnet-4-5",
    "codex": "gpt-5.5",
    "gemini-cli": "gemini-2.5-pro",
    "opencode": "m",
}
V1 = {"claude-code": "", "codex": "/v1", "gemini-cli": "", "opencode": "/v1"}  # the base URL each CLI takes
ALL_KEYS = {"ANTHROPIC_API_KEY", "OPENAI_API_KEY", "CODEX_API_KEY", "GEMINI_API_KEY", "OPENCODE_API_KEY",
            "OPENROUTER_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"}  # fmt: skip
USAGE = WireUsage(input=1500, output=90, cached=600, reasoning=0)
SUBMIT = (
    'python -c "import os, shutil; from huggingface_hub import snapshot_download as s; '
    "shutil.copytree(s(os.environ['PTB_MODEL'], local_files_only=True), 'final_model')\" "
    "&& echo ptb-marker > marker.txt"
)


def installed(agent: str) -> None:
    if not registry.get(agent).installed():
        pytest.skip(f"{agent} is not installed (make test installs it into .agents/)")


def cli_run(results, monkeypatch, agent: str, api: ScriptedAPI, *args: str, options: str = ""):
    for key in ALL_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv(KEY_ENV[agent], "test-key")
    config = f"{MODEL[agent]},base_url={api.url}{V1[agent]},retries=0{options}"
    _, run = run_ptb(results, "run", "--task", "arith", "--model", "ptb-tiny", "--agent", agent,
                     "--agent-config", config, "--network", "open", *args)  # fmt: skip
    return run


def trace(run) -> list[dict]:
    return [json.loads(line) for line in (run / "agent/trace.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("agent", ["claude-code", "codex", "gemini-cli", "opencode"])
def test_cli_agent_submits_through_a_shell_tool_call(agent, results, monkeypatch):
    installed(agent)
    with ScriptedAPI([ShellCall(SUBMIT), Reply("Submitted final_model.")], usage=USAGE) as api:
        run = cli_run(results, monkeypatch, agent, api, "--minutes", "3")
        wire = api.totals()
    rec = record(run)
    assert rec["solve"]["end"] == "exited", (rec["solve"], (run / "agent/output.log").read_text()[-3000:])
    assert rec["final_model"]["state"] == "ok" and rec["outcome"]["failure_class"] is None
    assert (run / "workspace/marker.txt").read_text() == "ptb-marker\n"
    setup = rec["solve"]["agent_setup"]
    assert setup["cli"] == f"{registry.get(agent).package}@{registry.get(agent).version}"
    assert setup["auth"] == f"api-key ({KEY_ENV[agent]})" and setup["base_url"].startswith(api.url)
    calls = [e for e in trace(run) if e["kind"] == "tool_call" and "ptb-marker" in e["text"]]
    assert len(calls) == 1 and calls[0]["tool"] == SHELL_TOOL[agent]
    summary = json.loads((run / "agent/summary.json").read_text())
    assert Usage(**summary["tokens"]) == expected_usage(agent, wire.__dict__)
    assert summary["tool_calls"].get(SHELL_TOOL[agent]) == 1 and summary["attempts"] == 1
    # the readable transcript, in the terminal and as a standalone page
    shown = ptb("trace", str(run), check=True).stdout
    assert f"tool calls 1: {SHELL_TOOL[agent]} 1" in shown and "echo ptb-marker > marker.txt" in shown
    page = run / "trace.html"
    ptb("trace", str(run), "--html", str(page), check=True)
    assert "echo ptb-marker &gt; marker.txt" in page.read_text() and "<script" not in page.read_text()


@pytest.mark.parametrize("agent", ["claude-code", "codex", "gemini-cli", "opencode"])
def test_an_agent_that_stops_early_is_resumed_in_its_session(agent, results, monkeypatch):
    """2-minute budget, 1-minute margin: the first attempt stops at once and is resumed; the second
    submits, then works (seven different 9-second commands: Codex stops a command after 10 s by default,
    Gemini CLI stops repeated identical calls as a loop) past the margin, so it is the last. The CLIs'
    own time per turn comes on top (up to 50 s over the eight turns, seen on a loaded CI machine):
    63 s of commands leave it that much room before the deadline."""
    installed(agent)
    script = [
        Reply("I will stop here."),
        ShellCall(SUBMIT),
        *[ShellCall(f"sleep 9 && echo step {i}") for i in range(7)],
        Reply("Done now."),
    ]
    with ScriptedAPI(script, usage=USAGE) as api:
        run = cli_run(results, monkeypatch, agent, api, "--minutes", "2",
                      "--continue-until-deadline", "--continue-margin", "1")  # fmt: skip
        main = api.main_requests()
    rec = record(run)
    attempts = rec["solve"]["attempts"]
    assert [a["end"] for a in attempts] == ["exited", "exited"], attempts
    assert attempts[0]["message"] is None
    assert attempts[1]["message"].startswith("You still have 0h 01m remaining. Time remains")
    assert rec["spec"]["continue_until_deadline"] is True and rec["final_model"]["state"] == "ok"
    # the resumed request carried the first attempt's conversation and the continuation message
    resumed = json.dumps(main[1].body)
    assert "I will stop here." in resumed and "Time remains" in resumed
    sessions = {e["session_id"] for e in trace(run) if e["kind"] == "session"}
    assert len(sessions) == 1
    assert json.loads((run / "agent/summary.json").read_text())["attempts"] == 2


def test_an_agent_that_keeps_stopping_is_not_resumed_forever(results, monkeypatch):
    installed("claude-code")
    with ScriptedAPI([], usage=USAGE) as api:  # every answer: "Done."
        run = cli_run(results, monkeypatch, "claude-code", api, "--minutes", "3",
                      "--continue-until-deadline", "--continue-margin", "0.5")  # fmt: skip
    solve = record(run)["solve"]
    assert len(solve["attempts"]) == 4  # the first run and three quick continuations
    assert solve["detail"].startswith("not resumed again: the last 3 resumed sessions each ended within 60 s")


@pytest.mark.parametrize(("agent", "status", "failure"), [
    ("claude-code", 529, "provider_error"), ("claude-code", 401, "auth_failed"),
    ("codex", 529, "provider_error"), ("codex", 401, "auth_failed"),
])  # fmt: skip
def test_provider_errors_become_failure_classes(agent, status, failure, results, monkeypatch):
    installed(agent)
    with ScriptedAPI([Fail(status)], usage=USAGE) as api:
        run = cli_run(results, monkeypatch, agent, api, "--minutes", "2")
    rec = record(run)
    assert rec["solve"]["agent_failure"]["failure"] == failure, rec["solve"]
    assert rec["outcome"]["failure_class"] == failure
    assert rec["final_model"]["state"] == "missing"
