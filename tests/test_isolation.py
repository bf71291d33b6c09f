"""What an agent can and cannot do inside its sandbox, probed from inside a real run (bubblewrap,
fuse-overlayfs) and again through `ptb shell` on the same run: protected files, hidden harness
files, other runs, the results store and credential files, writes outside the workspace, the
environment, and redaction of everything the run saved."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from conftest import ptb, record, run_ptb, script_agent

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

REPO = Path(__file__).resolve().parents[1]
SECRETS = {
    # placeholders assembled at run time, so no key-shaped literal sits in the source
    "OPENAI_API_KEY": "-".join(["sk", "placeholder", "openai", "0" * 24]),
    "ANTHROPIC_API_KEY": "-".join(["sk", "placeholder", "anthropic", "1" * 24]),
    "JUDGE_API_KEY": "judge-secret-0123456789",
    "MY_SERVICE_TOKEN": "tok-9f8e7d6c5b4a3210",
}
LEAKS = [
    "shaped " + "-".join(["sk", "placeholder", "2" * 24]),
    "_".join(["hf", "placeholder" + "3" * 24]),
    "Authorization: Bearer abcdefghijklmnop1234567890",
]
ALLOWED_ENV = {
    "PATH", "HOME", "LANG", "TMPDIR", "PYTHONNOUSERSITE", "TOKENIZERS_PARALLELISM", "PROMPT",
    "AGENT_CONFIG", "PTB_MODEL", "PTB_TASK", "PTB_DEADLINE", "NUM_GPUS", "HF_HOME", "HF_HUB_CACHE",
    "HF_HUB_DISABLE_TELEMETRY", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE",
    "OMP_NUM_THREADS", "PTB_DATA_DIR", "PWD", "SHLVL", "_",
    # --network none: the egress proxy, set by the bridge
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy", "no_proxy",
}  # fmt: skip

PROBE = r"""
import json, os, sys
P = json.loads(sys.argv[1])
out = {}
def attempt(fn):
    try:
        fn()
        return True
    except OSError:
        return False
def append(path):
    with open(path, "a") as f:
        f.write("tampered\n")
out["modify"] = {p: attempt(lambda p=p: append(p)) for p in ("evaluate.py", "templates/qwen3.jinja", "timer.sh")}
out["delete"] = attempt(lambda: os.remove("evaluate.py"))
out["visible"] = {p: os.path.exists(p) for p in P["hidden"]}
def create(d):
    with open(os.path.join(d, P["marker"]), "w") as f:
        f.write("x")
out["created"] = {d: attempt(lambda d=d: create(d)) for d in P["write_dirs"]}
out["workspace_write"] = attempt(lambda: create("."))
out["host_tmp_visible"] = os.path.exists(P["host_tmp_file"])
out["env"] = sorted(os.environ)
out["secret_in_env"] = [k for k, v in P["secrets"].items() if v in json.dumps(dict(os.environ))]
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
out["capabilities"] = [status[k].strip() for k in ("CapEff", "CapPrm")]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def planted(tmp_path_factory, ptb_home, results):
    """A user home with credential files, a file in the harness's state, another run, a file in
    the host's /tmp; the harness environment holds API keys."""
    base = tmp_path_factory.mktemp("planted")
    home = base / "home"
    for rel in (
        ".netrc",
        ".aws/credentials",
        ".config/gh/hosts.yml",
        ".cache/huggingface/token",
        ".ssh/id_ed25519",
    ):
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_text("credential\n")
    (ptb_home / "state.json").write_text("{}")
    other = results / "other-run"
    other.mkdir(exist_ok=True)
    (other / "run.json").write_text("{}")
    host_tmp = Path("/tmp") / f"ptb-host-only-{os.getpid()}"
    host_tmp.write_text("host")
    yield {"home": home, "other": other, "host_tmp": host_tmp}
    host_tmp.unlink()


@pytest.fixture(scope="module")
def probe_run(tmp_path_factory, planted, ptb_home, results):
    base = tmp_path_factory.mktemp("probe")
    hub = ptb_home / "hub"
    params = {
        "hidden": [
            str(REPO / "pyproject.toml"),
            str(REPO / "tests"),
            str(REPO / ".git"),
            str(planted["other"] / "run.json"),
            str(ptb_home / "state.json"),
            *[str(p) for p in planted["home"].rglob("*") if p.is_file()],
        ],
        "write_dirs": [
            str(results),
            str(hub),
            str(ptb_home),
            str(planted["home"]),
            "/usr",
            "/etc",
            "/tmp",
            "/",
        ],
        "marker": "probe-marker",
        "host_tmp_file": str(planted["host_tmp"]),
        "secrets": SECRETS,
    }
    leak = "\n".join(f"echo '{line}'" for line in LEAKS)
    agent = script_agent(
        base,
        "prober",
        f"cat > /tmp/probe.py <<'EOF'\n{PROBE}\nEOF\n"
        f"{sys.executable} /tmp/probe.py '{json.dumps(params)}' > probe.json\n"
        f"echo 'my token is {SECRETS['MY_SERVICE_TOKEN']}'\n{leak}\n"
        f'mkdir -p $HOME/trace && echo \'{{"said": "{SECRETS["MY_SERVICE_TOKEN"]}"}}\' > $HOME/trace/t.jsonl\n'
        f"echo '{SECRETS['MY_SERVICE_TOKEN']}' > notes.txt\n",
    )
    env = {**SECRETS, "HOME": str(planted["home"])}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        _, run = run_ptb(results, "run", "--task", "arith", "--model", "ptb-tiny", "--network", "none",
                         "--agent", "script", "--agent-config", str(agent), "--minutes", "2")  # fmt: skip
        shell = ptb("shell", str(run), "--", sys.executable, "-c", PROBE, json.dumps(params))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k)
            else:
                os.environ[k] = v
    return run, json.loads((run / "workspace/probe.json").read_text()), shell, params


def check_probe(out: dict, params: dict) -> None:
    assert out["modify"] == {"evaluate.py": False, "templates/qwen3.jinja": False, "timer.sh": False}
    assert out["delete"] is False
    assert not any(out["visible"].values()), out["visible"]
    assert out["workspace_write"] is True
    assert out["host_tmp_visible"] is False
    assert set(out["env"]) <= ALLOWED_ENV, set(out["env"]) - ALLOWED_ENV
    assert out["secret_in_env"] == []
    # None, even when the harness runs as root; exec cannot bring them back (no_new_privs): the probe
    # is itself an exec from the agent's shell.
    assert out["capabilities"] == ["0000000000000000"] * 2
    # Writes outside the workspace either fail or land in the sandbox's private /tmp; on the host
    # no marker appears anywhere (checked by the callers, after the sandbox is gone).
    assert (
        out["created"]["/usr"] is False and out["created"]["/etc"] is False and out["created"]["/"] is False
    )


def test_agent_is_confined(probe_run):
    run, out, _, params = probe_run
    check_probe(out, params)
    for d in params["write_dirs"]:
        assert not (Path(d) / params["marker"]).exists(), d
    assert (run / "workspace" / params["marker"]).exists()
    rec = record(run)
    assert rec["sandbox"] == "bwrap" and rec["solve"]["end"] == "exited"
    assert (run / "workspace/evaluate.py").read_text().count("tampered") == 0


def test_shell_has_the_same_confinement(probe_run):
    run, _, shell, params = probe_run
    assert shell.returncode == 0, shell.stderr
    check_probe(json.loads(shell.stdout.strip().splitlines()[-1]), params)
    for d in params["write_dirs"]:
        assert not (Path(d) / params["marker"]).exists(), d
    sessions = (run / "agent/shell/sessions.jsonl").read_text().splitlines()
    assert len(sessions) == 1 and json.loads(sessions[0])["sandbox"] == "bwrap"


def test_saved_files_are_redacted(probe_run):
    run, *_ = probe_run
    log = (run / "agent/output.log").read_text()
    assert "[REDACTED:MY_SERVICE_TOKEN]" in log
    assert log.count("[REDACTED]") == len(LEAKS)
    assert "Authorization: Bearer [REDACTED]" in log
    assert "[REDACTED:MY_SERVICE_TOKEN]" in (run / "agent/home/trace/t.jsonl").read_text()
    assert (run / "workspace/notes.txt").read_text() == "[REDACTED:MY_SERVICE_TOKEN]\n"
    # nowhere in the run directory, text or binary
    needles = [v.encode() for v in SECRETS.values()] + [b"abcdefghijklmnop1234567890", b"hf_placeholder"]
    for path in run.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(n in data for n in needles), path


def test_shell_runs_a_command_and_returns_its_status(probe_run):
    run, *_ = probe_run
    proc = ptb("shell", str(run), "--", "sh", "-c", "cat timer.sh >/dev/null && pwd && exit 7")
    assert proc.returncode == 7
    assert proc.stdout.strip() == str(run / "workspace")
    missing = ptb("shell", str(run.parent / "nope"))
    assert missing.returncode == 2 and "not a run directory" in missing.stderr


def test_record_redacts_evaluation_logs_and_the_record(probe_run, tmp_path, monkeypatch):
    """Secrets that reach the harness's own outputs after solve (an inspect log, a stage error in
    run.json) are redacted when the run is recorded; the log stays readable by inspect."""
    from inspect_ai import Task
    from inspect_ai import eval as inspect_eval
    from inspect_ai.dataset import Sample
    from inspect_ai.log import read_eval_log

    run, *_ = probe_run
    secret = SECRETS["MY_SERVICE_TOKEN"]
    [log] = inspect_eval(Task(dataset=[Sample(input=f"the token is {secret}", target="x")]),
                         model="mockllm/model", log_dir=str(tmp_path), display="none")  # fmt: skip
    planted_log = run / "eval" / Path(log.location).name
    planted_log.parent.mkdir(exist_ok=True)
    shutil.copy(log.location, planted_log)
    assert secret in read_eval_log(str(planted_log)).samples[0].input
    rec = record(run)
    rec["stages"]["evaluate"]["error"] = f"RuntimeError: upstream said {secret}"
    (run / "run.json").write_text(json.dumps(rec))

    monkeypatch.setenv("MY_SERVICE_TOKEN", secret)
    ptb("check", str(run), check=True)  # re-runs the integrity checks, then record
    sample = read_eval_log(str(planted_log)).samples[0]
    assert sample.input == "the token is [REDACTED:MY_SERVICE_TOKEN]"
    assert (
        record(run)["stages"]["evaluate"]["error"]
        == "RuntimeError: upstream said [REDACTED:MY_SERVICE_TOKEN]"
    )
