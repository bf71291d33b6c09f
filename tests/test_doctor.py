"""`ptb doctor` on this machine: it reports the machine's real state (GPUs, bubblewrap), names a missing
credential with its fix, sees credentials from .env, finds models missing from an experiment's model
cache, and exits 0 when ready, 1 when not."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from conftest import ptb
from posttrainbench.provision import config
from posttrainbench.sandbox.bwrap import Bubblewrap

KEY = "sk-ant-api03-" + "k" * 40


@pytest.fixture
def place(tmp_path, monkeypatch) -> Path:
    """No credentials, no configuration files, no subscription logins (HOME is tmp_path)."""
    for name in config.CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("PTB_CLAUDE_CODE_CREDENTIALS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def doctor(*args: str) -> tuple[int, dict[str, dict]]:
    proc = ptb("doctor", "--json", *args, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    assert report["ready"] == (proc.returncode == 0)
    assert KEY not in proc.stdout + proc.stderr
    return proc.returncode, {c["name"]: c for c in report["checks"]}


def gpus_here() -> int:
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return 0
    try:
        return pynvml.nvmlDeviceGetCount()
    finally:
        pynvml.nvmlShutdown()


def test_gpus_and_bwrap_as_they_are_here(place):
    code, checks = doctor("--gpus", "1", "--agent", "noop")
    if gpus_here():
        assert checks["gpu"]["status"] == "ok"
    else:
        assert checks["gpu"]["status"] == "fail" and "the runs need 1" in checks["gpu"]["detail"]
        assert "driver" in checks["gpu"]["fix"] and code == 1
    _, checks = doctor("--agent", "noop")
    assert checks["gpu"]["status"] != "fail"  # not asked for: not a failure
    bwrap = checks["bwrap"]
    if shutil.which("bwrap") is None:
        assert bwrap["status"] == "warn" and "bubblewrap" in bwrap["fix"]
    else:
        works = Bubblewrap.works(shutil.which("bwrap"))
        assert bwrap["status"] == ("ok" if works else "warn"), bwrap


def test_a_missing_agent_credential_fails_with_its_fix(place, monkeypatch):
    code, checks = doctor("--agent", "claude-code")
    cred = checks["credentials: claude-code"]
    assert cred["status"] == "fail" and "ANTHROPIC_API_KEY" in cred["detail"]
    assert "export ANTHROPIC_API_KEY=" in cred["fix"] and ".env" in cred["fix"]
    assert code == 1
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    _, checks = doctor("--agent", "claude-code")
    assert checks["credentials: claude-code"]["status"] == "ok"
    assert "ANTHROPIC_API_KEY set (from environment)" in checks["credentials: claude-code"]["detail"]


def test_a_judge_key_from_dotenv_is_seen(place):
    _, checks = doctor("--judge", "openai/gpt-5.4")
    assert checks["credentials: judge openai/gpt-5.4"]["status"] == "fail"
    (place / ".env").write_text(f"OPENAI_API_KEY={KEY}\n")
    _, checks = doctor("--judge", "openai/gpt-5.4")
    judge = checks["credentials: judge openai/gpt-5.4"]
    assert judge["status"] == "ok" and "OPENAI_API_KEY set (from .env)" in judge["detail"]


def test_models_missing_from_the_experiments_cache(place):
    exp = place / "exp.toml"
    exp.write_text(
        textwrap.dedent("""
            [matrix]
            tasks = ["arith"]
            models = ["ptb-tiny", "Qwen3-1.7B-Base"]
            [[agents]]
            name = "noop"
            [paths]
            model_cache = "empty-cache"
        """)
    )
    code, checks = doctor("--experiment", str(exp))
    cache = checks["model cache"]
    assert cache["status"] == "fail" and code == 1
    assert "Qwen3-1.7B-Base" in cache["detail"] and "ptb-tiny" not in cache["detail"]  # built locally
    assert str(place / "empty-cache") in cache["detail"]
    assert "ptb cache pull --models Qwen3-1.7B-Base" in cache["fix"]


def test_ready_exits_0(place):
    code, checks = doctor()
    assert code == 0, {n: c for n, c in checks.items() if c["status"] == "fail"}
    assert checks["credentials"]["status"] == "warn"  # none set: said, not a failure
