"""The four CLI agents without running them: agent configuration, the command lines (first run and
resume), the configuration files each gets in its HOME, what run.json records of it (never a
secret), and what a run's summary and failure class make of a trace."""

from __future__ import annotations

import json
import tomllib

import pytest

from posttrainbench import models
from posttrainbench.agents import registry
from posttrainbench.agents.base import AgentContext, AgentStartError
from posttrainbench.agents.cli.base import parse_config
from posttrainbench.specs import AgentFailureClass, SolveAttempt, SolveEnd
from posttrainbench.traces.schema import TraceEvent, Usage
from posttrainbench.traces.summary import agent_failure, summarize

CLIS = ("claude-code", "codex", "gemini-cli", "opencode")


def ctx(tmp_path, config: str) -> AgentContext:
    return AgentContext(workspace=tmp_path / "ws", home=tmp_path / "home", prompt="Do the task.",
                        model=models.get("ptb-tiny"), task="arith", deadline=0, gpus=0, config=config)  # fmt: skip


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """Fake install trees: only the executables' paths matter for rendering."""
    monkeypatch.setenv("PTB_AGENTS_DIR", str(tmp_path / "agents"))
    for name in CLIS:
        agent = registry.get(name)
        agent.executable.parent.mkdir(parents=True)
        agent.executable.write_text("#!/bin/sh\n")
    return tmp_path


def test_agent_config_is_model_then_options():
    config = "gpt-5.1-codex,effort=high,base_url=http://gw:8080/v1,auth=subscription,search=off,retries=2"
    cfg = parse_config("codex", config)
    assert (cfg.model, cfg.effort, cfg.base_url, cfg.auth, cfg.search, cfg.retries) == (
        "gpt-5.1-codex", "high", "http://gw:8080/v1", "subscription", False, 2,
    )  # fmt: skip
    for bad, says in [("", "needs the model first"), ("m,colour=red", "unknown agent option"),
                      ("m,auth=oauth", "auth must be"), ("effort=high", "needs the model first"),
                      ("m,retries=many", "whole number")]:  # fmt: skip
        with pytest.raises(AgentStartError, match=says):
            parse_config("codex", bad)


def test_command_lines_match_the_originals(installed):
    c = ctx(installed, "claude-opus-4-6,effort=high")
    claude = registry.get("claude-code")
    argv = claude.command(c)
    assert argv[1:-1] == ["-p", "--output-format", "stream-json", "--verbose", "--dangerously-skip-permissions",
                          "--model", "claude-opus-4-6", "--effort", "high"]  # fmt: skip
    assert argv[-1].startswith("Do the task.") and "non-interactive mode" in argv[-1]
    assert claude.resume_command(c, "abc-123", "Time remains.")[-3:] == [
        "--resume",
        "abc-123",
        "Time remains.",
    ]
    assert claude.resume_command(c, None, "m")[-2:] == ["--continue", "m"]

    codex = registry.get("codex")
    c = ctx(installed, "gpt-5.1-codex")
    assert codex.command(c)[1:] == ["exec", "--json", "--skip-git-repo-check",
                                    "--dangerously-bypass-approvals-and-sandbox", "-m", "gpt-5.1-codex", "Do the task."]  # fmt: skip
    assert codex.resume_command(c, None, "m")[-3:] == ["resume", "--last", "m"]

    gemini = registry.get("gemini-cli")
    assert gemini.command(ctx(installed, "gemini-3-pro-preview"))[1:] == [
        "--yolo", "-m", "gemini-3-pro-preview", "--output-format", "stream-json", "-p", "Do the task."]  # fmt: skip

    opencode = registry.get("opencode")
    assert opencode.command(ctx(installed, "anthropic/claude-opus-4-5"))[1:] == [
        "run", "-m", "anthropic/claude-opus-4-5", "--format", "json", "--thinking", "Do the task."]  # fmt: skip


def test_configuration_files_and_base_url(installed, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    c = ctx(installed, "gpt-5.1-codex,effort=xhigh,base_url=http://127.0.0.1:9/v1")
    codex = registry.get("codex")
    codex.prepare(c)
    config = tomllib.loads((c.home / ".codex/config.toml").read_text())
    assert config["model_reasoning_effort"] == "xhigh" and config["model_provider"] == "ptb"
    assert config["model_providers"]["ptb"] == {"name": "ptb", "base_url": "http://127.0.0.1:9/v1",
                                                "env_key": "OPENAI_API_KEY", "wire_api": "responses"}  # fmt: skip
    assert codex.environment(c)["CODEX_HOME"] == str(c.home / ".codex")

    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    claude_env = registry.get("claude-code").environment(ctx(installed, "m,base_url=http://gw"))
    assert claude_env["ANTHROPIC_BASE_URL"] == "http://gw" and claude_env["ANTHROPIC_API_KEY"] == "test-key"
    assert claude_env["BASH_MAX_TIMEOUT_MS"] == "36000000"

    gemini = registry.get("gemini-cli")
    gc = ctx(installed, "gemini-3-pro-preview,auth=subscription")
    gemini.prepare(gc)
    assert json.loads((gc.home / ".gemini/settings.json").read_text())["security"]["auth"][
        "selectedType"
    ] == ("oauth-personal")

    opencode = registry.get("opencode")
    oc = ctx(installed, "m1,base_url=http://127.0.0.1:9/v1")
    opencode.prepare(oc)
    cfg = json.loads((oc.home / ".config/opencode/opencode.json").read_text())
    assert cfg["permission"] == "allow" and cfg["autoupdate"] is False
    assert cfg["provider"]["ptb"]["options"]["baseURL"] == "http://127.0.0.1:9/v1"
    assert opencode.command(oc)[3] == "ptb/m1"


def test_preflight_says_what_is_missing(installed, monkeypatch, tmp_path):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    claude = registry.get("claude-code")
    with pytest.raises(AgentStartError, match="needs one of ANTHROPIC_API_KEY"):
        claude.preflight(ctx(installed, "claude-opus-4-6"))
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.delenv("CLAUDE_CODE_OAUTH_TOKEN", raising=False)
    with pytest.raises(AgentStartError, match=r"needs its login at .*\.claude/\.credentials\.json"):
        claude.preflight(ctx(installed, "claude-opus-4-6,auth=subscription"))
    monkeypatch.setenv("PTB_AGENTS_DIR", str(tmp_path / "empty"))
    with pytest.raises(AgentStartError, match="run `ptb agents install claude-code`"):
        claude.preflight(ctx(installed, "claude-opus-4-6"))


def test_subscription_login_is_bound_where_the_cli_reads_it(installed, monkeypatch, tmp_path):
    login = tmp_path / "user/.codex/auth.json"
    login.parent.mkdir(parents=True)
    login.write_text("{}")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    codex = registry.get("codex")
    c = ctx(installed, "gpt-5.1-codex,auth=subscription")
    codex.preflight(c)
    [bound] = [m for m in codex.mounts(c) if m.kind == "rw"]
    assert (bound.source, bound.target) == (str(login), str(c.home / ".codex/auth.json"))
    setup = codex.setup(c)
    assert setup["auth"] == "subscription (~/.codex/auth.json)" and setup["cli"] == "@openai/codex@0.171.0"


def test_setup_records_the_key_name_never_the_key(installed, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "secret-value-123456789")
    setup = registry.get("gemini-cli").setup(ctx(installed, "gemini-3-pro-preview"))
    assert setup["auth"] == "api-key (GEMINI_API_KEY)"
    assert "secret-value" not in json.dumps(setup)


def _events(*specs):
    return [TraceEvent(**s) for s in specs]


def test_summary_counts_tools_tokens_cost_and_time():
    events = _events(
        {"kind": "session", "session_id": "s1"},
        {"kind": "tool_call", "tool": "Bash", "text": "ls"},
        {"kind": "tool_result", "tool": "Bash", "text": "x"},
        {"kind": "usage", "model": "claude-sonnet-4-5", "usage": Usage(input=1000, output=200, cached=5000)},
        {"kind": "tool_call", "tool": "Bash", "text": "pwd"},
        {"kind": "tool_call", "tool": "Write", "text": "{}"},
        {"kind": "message", "text": "done"},
        {"kind": "usage", "model": "claude-sonnet-4-5", "usage": Usage(input=10, output=20, cache_write=100)},
    )
    attempts = [SolveAttempt(started_at="t", seconds=600, end=SolveEnd.exited, exit_code=0),
                SolveAttempt(started_at="t", seconds=1200, end=SolveEnd.deadline, exit_code=None, message="m")]  # fmt: skip
    stamps = ["2026-11-27T10:00:00Z", "2026-11-27T10:00:05Z", "2026-11-27T10:20:05Z"]
    s = summarize("claude-code", events, stamps, attempts, budget=3600)
    assert s.tool_calls == {"Bash": 2, "Write": 1} and s.tool_calls_total == 3 and s.turns == 2
    assert s.tokens == Usage(input=1010, output=220, cached=5000, cache_write=100)
    # list prices, $/Mtok: 3 in, 15 out, 0.30 cache read, 3.75 cache write
    assert s.cost_source == "price-table" and s.cost_usd == pytest.approx(
        (1010 * 3 + 220 * 15 + 5000 * 0.3 + 100 * 3.75) / 1e6
    )
    assert (s.attempts, s.active_seconds, s.idle_seconds, s.longest_silence_seconds) == (2, 1800, 1800, 1200)
    # a CLI's own cost report wins over the table
    own = summarize(
        "claude-code", [*events, TraceEvent(kind="usage", usage=Usage(), cost_usd=0.5)], [], [], 0
    )
    assert (own.cost_usd, own.cost_source) == (0.5, "cli")


@pytest.mark.parametrize(
    ("error", "expect"),
    [
        (
            {"status": 529, "error_type": "overloaded_error", "text": "Overloaded"},
            AgentFailureClass.provider_error,
        ),
        ({"status": 401, "text": "invalid x-api-key"}, AgentFailureClass.auth_failed),
        ({"status": 429, "text": "You've hit your limit"}, AgentFailureClass.spend_limit),
        (
            {"status": 429, "error_type": "rate_limit_error", "text": "slow down"},
            AgentFailureClass.provider_error,
        ),
        (
            {"text": "API Error: exception TypeError: fetch failed sending request"},
            AgentFailureClass.provider_error,
        ),
    ],
)
def test_failure_class_from_the_last_unrecovered_error(error, expect):
    failure = agent_failure(
        _events({"kind": "message", "text": "hi"}, {"kind": "error", **error}), [], hung=False
    )
    assert failure is not None and failure.failure == expect
    # the CLI retried and the model answered again: nothing failed
    recovered = _events({"kind": "error", **error}, {"kind": "usage", "usage": Usage(input=1)})
    assert agent_failure(recovered, [], hung=False) is None


def test_failure_class_from_the_log_and_a_hung_cli():
    failure = agent_failure([], ["starting", "ERROR: unexpected status 401 Unauthorized"], hung=False)
    assert failure is not None and failure.failure == AgentFailureClass.auth_failed
    assert agent_failure([], ["all good"], hung=True).failure == AgentFailureClass.agent_hung
    assert agent_failure([], ["all good"], hung=False) is None
    # numbers that merely look like statuses, in a CLI's JSON or in a parsed trace, are not errors
    assert agent_failure([], ['{"type":"result","stats":{"duration_ms":503}}'], hung=False) is None
    assert agent_failure(_events({"kind": "message", "text": "ok"}), ["took 503 ms"], hung=False) is None
    # a progress bar's rate is no status either (a no-op agent's model save printed this)
    saving = "Writing model shards: 100%|██████████| 1/1 [00:00<00:00, 401.83it/s]"
    assert agent_failure([], ["starting", saving], hung=False) is None
    assert agent_failure([], ["HTTP 403 Forbidden"], hung=False).failure == AgentFailureClass.auth_failed
