"""The command line: help that teaches, listings, and one-line errors with exit code 2."""

from __future__ import annotations

import pytest

from conftest import ptb


def test_help_lists_every_command():
    out = ptb("--help", check=True).stdout
    for command in ("list", "run", "eval", "check", "show", "demo"):
        assert command in out


@pytest.mark.parametrize("command", ["list", "run", "eval", "check", "show", "demo"])
def test_every_command_has_help(command):
    out = ptb(command, "--help", check=True).stdout
    assert "Usage" in out and len(out.splitlines()) > 5


def test_list_shows_catalog(ptb_home):
    assert "arith" in ptb("list", "tasks", check=True).stdout
    models = ptb("list", "models", check=True).stdout
    for name in ("ptb-tiny", "Qwen3-1.7B-Base", "Qwen3-4B-Base", "SmolLM3-3B-Base", "gemma-3-4b-pt"):
        assert name in models
    agents = ptb("list", "agents", check=True).stdout
    for name in ("noop", "reference", "cheat-testset", "script"):
        assert name in agents


def one_line_error(proc) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    return lines[0]


BASE = ["run", "--task", "arith", "--model", "ptb-tiny", "--agent", "noop", "--minutes", "1"]


def _with(option: str, value: str) -> list[str]:
    args = list(BASE)
    args[args.index(option) + 1] = value
    return args


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (_with("--task", "gsm9k"), "valid tasks: aime2025, arenahardwriting, arith, bfcl"),
        (_with("--model", "llama"), "valid models: Qwen3-1.7B-Base"),
        (_with("--agent", "claude"), "valid agents: cheat-api, cheat-judge-note, cheat-paraphrase"),
        (["list", "widgets"], "valid: agents, models, tasks"),
        (_with("--minutes", "0"), "time budget must be positive"),
        ([*BASE, "--sandbox", "docker"], "valid sandboxes: apptainer, auto, bwrap, none"),
        ([*BASE, "--network", "lan"], "valid network policies: allowlist, none, open"),
        ([*BASE, "--allow-host", "example.org"], "--allow-host only applies with --network allowlist"),
        ([*BASE, "--judge-model", "openai/gpt-4o"], "arith is scored without a judge"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(ptb_home, args, expect):
    assert expect in one_line_error(ptb(*args))


def test_unwritable_results_directory(ptb_home, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    line = one_line_error(ptb(*BASE, "--out", str(blocker / "results")))
    assert "cannot create results directory" in line


def test_model_missing_from_cache(ptb_home, tmp_path):
    line = one_line_error(ptb(*_with("--model", "Qwen3-1.7B-Base"), "--out", str(tmp_path)))
    assert "not in the model cache" in line and "PTB_MODEL_CACHE" in line


@pytest.mark.parametrize("command", ["eval", "check", "show", "trace"])
def test_stage_commands_need_a_run_directory(tmp_path, command):
    assert "not a run directory" in one_line_error(ptb(command, str(tmp_path)))
