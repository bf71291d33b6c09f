"""The four CLI trace parsers over real CLI output: output captured against the scripted API
(tests/fixtures/cli_traces/<agent>/<scenario>.jsonl, with the usage the server reported in
<scenario>.meta.json) and live runs (`-m cli`) of each CLI installed by `ptb agents install`
(PTB_AGENTS_DIR; `make test` installs them into .agents/).

Re-capture the fixtures with `python tests/test_trace_parsers.py capture [AGENT ...]`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from posttrainbench.agents import registry
from posttrainbench.testing.agent_api import Fail, Reply, Request, ScriptedAPI, ShellCall, Step, WireUsage
from posttrainbench.traces.parsers import PARSERS
from posttrainbench.traces.schema import TraceEvent, Usage

FIXTURES = Path(__file__).parent / "fixtures" / "cli_traces"
AGENTS = ("claude-code", "codex", "gemini-cli", "opencode")
BINARIES = {"claude-code": "claude", "codex": "codex", "gemini-cli": "gemini", "opencode": "opencode"}
MODELS = {
    "claude-code": "claude-sonnet-4-5",
    "codex": "gpt-5.5",
    "gemini-cli": "gemini-2.5-pro",
    "opencode": "local/m",
}
SHELL_TOOL = {
    "claude-code": "Bash",
    "codex": "command_execution",
    "gemini-cli": "run_shell_command",
    "opencode": "bash",
}
KEY = "test-key"  # a fake key: the scripted API accepts anything

USAGE = WireUsage(input=1200, output=70, cached=800, reasoning=20)
MARKER = "echo ptb-marker > marker.txt"
FIRST_PROMPT = "Create a file named marker.txt that contains ptb-marker."
FIRST = [
    ShellCall(MARKER, reasoning="One shell command creates the marker file."),
    Reply("Created marker.txt.", reasoning="The command succeeded."),
]
RESUME_PROMPT = "What does marker.txt contain?"
RESUMED = [
    ShellCall("cat marker.txt", reasoning="Read the file back."),
    Reply("marker.txt contains ptb-marker."),
]


# -- driving each CLI ---------------------------------------------------------------------------
def binary(agent: str) -> Path:
    return registry.get(agent).executable


def invocation(
    agent: str, url: str, home: Path, prompt: str, resume: str | None = None, options: Sequence[str] = ()
) -> tuple[list[str], dict]:
    """argv and environment that run `agent` against the API at `url` non-interactively, tools
    auto-approved, with machine-readable output and the fewest retries; `resume`: a session id;
    `options`: more CLI options."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "TMPDIR": str(home / "tmp")}
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    exe, model = str(binary(agent)), MODELS[agent]
    if agent == "claude-code":
        env |= {
            "ANTHROPIC_BASE_URL": url,
            "ANTHROPIC_API_KEY": KEY,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "CLAUDE_CODE_MAX_RETRIES": "0",
            "IS_SANDBOX": "1",  # allows --dangerously-skip-permissions as root
        }
        argv = [exe, "-p", "--output-format", "stream-json", "--verbose", "--dangerously-skip-permissions"]
        argv += ["--model", model]
        tail = [*(["--resume", resume] if resume else []), prompt]
    elif agent == "codex":
        (home / ".codex").mkdir(parents=True, exist_ok=True)
        (home / ".codex" / "config.toml").write_text(
            'model_provider = "local"\n'
            "check_for_update_on_startup = false\n"
            "[analytics]\nenabled = false\n"
            "[features]\nplugins = false\n"
            "[model_providers.local]\n"
            'name = "local"\n'
            f'base_url = "{url}/v1"\n'
            'env_key = "LOCAL_API_KEY"\n'
            'wire_api = "responses"\n'
            "request_max_retries = 0\n"
            "stream_max_retries = 0\n"
        )
        env["LOCAL_API_KEY"] = KEY
        argv = [exe, "exec", "--json", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox"]
        argv += ["--model", model]
        tail = [*(["resume", resume] if resume else []), prompt]
    elif agent == "gemini-cli":
        (home / ".gemini").mkdir(parents=True, exist_ok=True)
        settings = {
            "security": {"auth": {"selectedType": "gemini-api-key"}},
            "general": {"maxAttempts": 1},
            "privacy": {"usageStatisticsEnabled": False},
        }
        (home / ".gemini" / "settings.json").write_text(json.dumps(settings))
        env |= {"GOOGLE_GEMINI_BASE_URL": url, "GEMINI_API_KEY": KEY, "GEMINI_CLI_TRUST_WORKSPACE": "true"}
        argv = [exe, "--yolo", "--output-format", "stream-json", "--model", model]
        tail = [*(["--resume", resume] if resume else []), "-p", prompt]
    else:
        provider = {
            "npm": "@ai-sdk/openai-compatible",
            "name": "Local",
            "options": {"baseURL": f"{url}/v1", "apiKey": "{env:LOCAL_API_KEY}"},
            "models": {"m": {"name": "m"}},
        }
        config = {
            "autoupdate": False,
            "share": "disabled",
            "permission": "allow",
            "provider": {"local": provider},
        }
        env |= {
            "LOCAL_API_KEY": KEY,
            "OPENCODE_CONFIG_CONTENT": json.dumps(config),
            "OPENCODE_DISABLE_MODELS_FETCH": "1",
            "OPENCODE_DISABLE_AUTOUPDATE": "1",
            "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
        }
        argv = [exe, "run", "--model", model, "--format", "json", "--thinking"]
        tail = [*(["--session", resume] if resume else []), prompt]
    return [*argv, *options, *tail], env


@dataclass
class Run:
    argv: list[str]
    env: dict[str, str]
    exit_code: int
    stdout: str
    stderr: str
    seconds: float
    requests: list[Request]  # what the server saw during this run


def run_cli(
    agent: str,
    api: ScriptedAPI,
    home: Path,
    work: Path,
    prompt: str,
    resume: str | None = None,
    options: Sequence[str] = (),
    timeout: float = 120,
) -> Run:
    argv, env = invocation(agent, api.url, home, prompt, resume, options)
    seen = len(api.requests)
    start = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    return Run(argv, env, proc.returncode, out, err, time.monotonic() - start, api.requests[seen:])


def wire_totals(api: ScriptedAPI, requests: list[Request] | None = None) -> dict[str, int]:
    return asdict(api.totals(requests))


def parse(agent: str, *outputs: str) -> list[TraceEvent]:
    return list(PARSERS[agent]((None, line) for out in outputs for line in out.splitlines()))


# -- what every parser must give --------------------------------------------------------------
def expected_usage(agent: str, wire: dict[str, int]) -> Usage:
    """The wire's totals in trace terms (input without cache reads, output with reasoning). On the
    Anthropic wire input excludes cache reads and thinking tokens are not counted apart; on the OpenAI
    and Gemini wires input includes cache reads; Gemini counts thoughts apart from output."""
    anthropic = agent == "claude-code"
    return Usage(
        input=wire["input"] if anthropic else wire["input"] - wire["cached"],
        output=wire["output"] + (wire["reasoning"] if agent == "gemini-cli" else 0),
        cached=wire["cached"],
        reasoning=0 if anthropic else wire["reasoning"],
    )


def total(events: list[TraceEvent]) -> Usage:
    return sum((e.usage for e in events if e.kind == "usage" and e.usage), Usage())


def sessions(events: list[TraceEvent]) -> list[str]:
    return [e.session_id for e in events if e.kind == "session" and e.session_id]


def shell_call(agent: str, events: list[TraceEvent], command_part: str) -> tuple[TraceEvent, TraceEvent]:
    """The one shell tool call whose input names `command_part`, and its result."""
    calls = [
        e for e in events if e.kind == "tool_call" and command_part in json.loads(e.text).get("command", "")
    ]
    assert len(calls) == 1, calls
    call = calls[0]
    assert call.tool == SHELL_TOOL[agent] and call.call_id
    results = [e for e in events if e.kind == "tool_result" and e.call_id == call.call_id]
    assert len(results) == 1, results
    return call, results[0]


def check_first_run(agent: str, events: list[TraceEvent], wire: dict[str, int]) -> str:
    """The parsed first run: the marker call and its result, the final message, reasoning where the
    CLI prints it, exact usage, one session id (returned)."""
    shell_call(agent, events, "marker.txt")
    assert any(e.kind == "message" and e.text == "Created marker.txt." for e in events)
    if agent != "gemini-cli":  # Gemini CLI's stream-json does not print thoughts
        assert [e.text for e in events if e.kind == "reasoning"] == [s.reasoning for s in FIRST]
    assert total(events) == expected_usage(agent, wire)
    assert not [e for e in events if e.kind == "error"]
    ids = set(sessions(events))
    assert len(ids) == 1
    return ids.pop()


def check_resumed(agent: str, first: list[TraceEvent], both: list[TraceEvent], wire: dict[str, int]) -> None:
    """The first run and its resumption parsed as one stream: the same session, the file read back,
    usage of both runs exact."""
    assert set(sessions(both)) == set(sessions(first))
    _, result = shell_call(agent, both[len(first) :], "cat marker.txt")
    assert "ptb-marker" in result.text
    assert any(
        e.kind == "message" and e.text == "marker.txt contains ptb-marker." for e in both[len(first) :]
    )
    assert total(both) == expected_usage(agent, wire)


def check_error(events: list[TraceEvent], status: int) -> None:
    errors = [e for e in events if e.kind == "error"]
    assert errors and errors[-1].status == status, errors
    assert total(events) == Usage()


# -- fixtures -----------------------------------------------------------------------------------
def fixture(agent: str, scenario: str) -> tuple[str, dict]:
    base = FIXTURES / agent / scenario
    return Path(f"{base}.jsonl").read_text(), json.loads(Path(f"{base}.meta.json").read_text())


@pytest.mark.parametrize("agent", AGENTS)
def test_tool_call_fixture(agent: str) -> None:
    out, meta = fixture(agent, "tool_call")
    assert meta["exit_code"] == 0
    events = parse(agent, out)
    check_first_run(agent, events, meta["server"]["totals"])
    if agent == "claude-code":
        assert [e.cost_usd for e in events if e.cost_usd is not None] == [
            json.loads(out.splitlines()[-1])["total_cost_usd"]
        ]


def test_claude_code_partial_messages_fixture() -> None:
    """With --include-partial-messages each response's usage is exact (output_tokens from
    message_delta), so every usage event reports the wire's output, not just their sum."""
    out, meta = fixture("claude-code", "tool_call_partial")
    events = parse("claude-code", out)
    check_first_run("claude-code", events, meta["server"]["totals"])
    per_response = [r["usage"] for r in meta["server"]["requests"] if r["main"]]
    assert [e.usage.output for e in events if e.kind == "usage" and e.usage] == [
        u["output"] for u in per_response
    ]


@pytest.mark.parametrize("agent", AGENTS)
def test_resumed_fixture(agent: str) -> None:
    first_out, first_meta = fixture(agent, "tool_call")
    out, meta = fixture(agent, "resumed")
    assert meta["exit_code"] == 0 and meta["server"]["resent_history"]
    first, alone = parse(agent, first_out), parse(agent, out)
    wire = {k: first_meta["server"]["totals"][k] + v for k, v in meta["server"]["totals"].items()}
    check_resumed(agent, first, parse(agent, first_out, out), wire)
    # Parsed alone, a resumed Codex thread counts its earlier turns again: its totals are cumulative.
    assert total(alone) == expected_usage(agent, wire if agent == "codex" else meta["server"]["totals"])


@pytest.mark.parametrize("agent", AGENTS)
@pytest.mark.parametrize("status", [529, 401])
def test_error_fixture(agent: str, status: int) -> None:
    out, meta = fixture(agent, f"error_{status}")
    assert meta["exit_code"] != 0
    assert {r["status"] for r in meta["server"]["requests"] if r["main"]} == {status}
    check_error(parse(agent, out), status)


def test_non_json_lines_are_skipped() -> None:
    out, _ = fixture("codex", "tool_call")
    noisy = [(None, "Reading additional input from stdin..."), (None, "{not json"), (None, "[1, 2]")]
    lines = noisy + [("2026-11-27T00:00:00Z", line) for line in out.splitlines()]
    events = list(PARSERS["codex"](lines))
    assert events == [e.model_copy(update={"time": "2026-11-27T00:00:00Z"}) for e in parse("codex", out)]


# -- live runs ----------------------------------------------------------------------------------
@pytest.mark.cli
@pytest.mark.parametrize("agent", AGENTS)
def test_live_cli(agent: str, tmp_path: Path) -> None:
    """The real CLI: a shell tool call, then the session resumed with a new message."""
    if not binary(agent).exists():
        pytest.skip(f"{binary(agent)} is not installed")
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    with ScriptedAPI(FIRST + RESUMED, usage=USAGE) as api:
        first = run_cli(agent, api, home, work, FIRST_PROMPT)
        assert first.exit_code == 0, first.stderr[-2000:]
        assert (work / "marker.txt").read_text() == "ptb-marker\n"
        assert {r.auth for r in first.requests} <= {KEY, f"Bearer {KEY}"}
        first_events = parse(agent, first.stdout)
        session = check_first_run(agent, first_events, wire_totals(api, first.requests))

        resumed = run_cli(agent, api, home, work, RESUME_PROMPT, resume=session)
        assert resumed.exit_code == 0, resumed.stderr[-2000:]
        assert resent_history(resumed)  # the resumed request carries the first run's conversation
        both = parse(agent, first.stdout, resumed.stdout)
        check_resumed(agent, first_events, both, wire_totals(api))


# -- capturing the fixtures ---------------------------------------------------------------------
CONFIG_FILES = (".codex/config.toml", ".gemini/settings.json")


def _scrub(value: str, run: Run, api: ScriptedAPI, home: Path, work: Path, agent: str) -> str:
    for old, new in (
        (api.url, "$API"),
        (str(binary(agent)), BINARIES[agent]),
        (str(home), "$HOME"),
        (str(work), "$WORK"),
    ):
        value = value.replace(old, new)
    return value


def resent_history(run: Run) -> bool:
    main = [r for r in run.requests if r.main]
    return bool(main) and MARKER in json.dumps(main[0].body)


def _save(
    agent: str, scenario: str, run: Run, api: ScriptedAPI, home: Path, work: Path, **extra: object
) -> None:
    base = FIXTURES / agent / scenario
    base.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{base}.jsonl").write_text(run.stdout)
    stderr = Path(f"{base}.stderr.txt")
    stderr.unlink(missing_ok=True)
    if run.stderr.strip():
        stderr.write_text(run.stderr)
    version = subprocess.run(
        [binary(agent), "--version"], capture_output=True, text=True, env=run.env, check=False
    )
    scrub = lambda s: _scrub(s, run, api, home, work, agent)  # noqa: E731
    meta = {
        "agent": agent,
        "scenario": scenario,
        "version": version.stdout.strip(),
        "argv": [scrub(a) for a in run.argv],
        "env": {k: scrub(v) for k, v in run.env.items() if k != "PATH"},
        "files": {
            f"$HOME/{name}": scrub((home / name).read_text())
            for name in CONFIG_FILES
            if (home / name).exists()
        },
        "exit_code": run.exit_code,
        "seconds": round(run.seconds, 1),
        "server": {
            "requests": [
                {
                    "path": r.path,
                    "main": r.main,
                    "status": r.status,
                    "usage": asdict(r.usage) if r.usage else None,
                }
                for r in run.requests
            ],
            "totals": wire_totals(api, run.requests),
            **extra,
        },
    }
    Path(f"{base}.meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"{agent}/{scenario}: exit {run.exit_code}, {run.seconds:.1f}s, {len(run.stdout)} bytes")


def capture(agent: str) -> None:
    with tempfile.TemporaryDirectory(prefix="ptb-capture-") as tmp:
        home, work = Path(tmp) / "home", Path(tmp) / "work"
        home.mkdir()
        work.mkdir()
        with ScriptedAPI(FIRST + RESUMED, usage=USAGE) as api:
            first = run_cli(agent, api, home, work, FIRST_PROMPT)
            _save(agent, "tool_call", first, api, home, work)
            (session,) = set(sessions(parse(agent, first.stdout)))
            resumed = run_cli(agent, api, home, work, RESUME_PROMPT, resume=session)
            _save(agent, "resumed", resumed, api, home, work, resent_history=resent_history(resumed))
        if agent == "claude-code":  # the same run with per-response usage in stream events
            with ScriptedAPI(FIRST, usage=USAGE) as api:
                partial = run_cli(
                    agent, api, home, work, FIRST_PROMPT, options=["--include-partial-messages"]
                )
                _save(agent, "tool_call_partial", partial, api, home, work)
        for status in (529, 401):
            script: list[Step] = [Fail(status)]
            with ScriptedAPI(script, usage=USAGE) as api:
                failed = run_cli(agent, api, home, work, "Say hello.")
                _save(agent, f"error_{status}", failed, api, home, work)


if __name__ == "__main__":
    if sys.argv[1:2] != ["capture"]:
        sys.exit("usage: python tests/test_trace_parsers.py capture [AGENT ...]")
    for name in sys.argv[2:] or AGENTS:
        capture(name)
