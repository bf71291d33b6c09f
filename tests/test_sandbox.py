"""Sandboxes: bubblewrap for real (read-only protected files, hidden paths, private /tmp, no network
when isolated, cleared environment); the apptainer and GPU renderings against their documented
flags; GPU allotment, credentials pass-through, egress host patterns, grader upstreams."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from posttrainbench import models, sandbox
from posttrainbench.agents import registry
from posttrainbench.agents.base import AgentContext, agent_environment
from posttrainbench.errors import UserError
from posttrainbench.sandbox import gpus
from posttrainbench.sandbox.apptainer import Apptainer
from posttrainbench.sandbox.bwrap import Bubblewrap
from posttrainbench.sandbox.egress import allowed
from posttrainbench.sandbox.grader import Upstream
from posttrainbench.sandbox.plan import Mount, MountPlan

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


def run_in(plan: MountPlan, script: str) -> subprocess.CompletedProcess:
    box = Bubblewrap(shutil.which("bwrap"))
    return subprocess.run(
        box.command(plan, ["/bin/sh", "-c", script]), env=box.env(plan), capture_output=True, text=True
    )


@pytest.fixture
def layout(tmp_path):
    root = tmp_path / "results"
    ws = root / "run1" / "workspace"
    ws.mkdir(parents=True)
    (ws / "evaluate.py").write_text("print('pristine')\n")
    other = root / "run0"
    other.mkdir()
    (other / "secret.txt").write_text("another run's data")
    plan = MountPlan(
        mounts=[
            Mount(kind="tmpfs", target=str(root)),
            Mount(kind="rw", source=str(ws), target=str(ws)),
            Mount(kind="ro", source=str(ws / "evaluate.py"), target=str(ws / "evaluate.py")),
        ],
        workdir=str(ws),
        env={"PATH": "/usr/bin:/bin", "ONLY": "this"},
        network=False,
    )
    return plan, ws, other


@needs_bwrap
def test_protected_file_is_read_only_inside_writable_workspace(layout):
    plan, ws, _ = layout
    proc = run_in(
        plan,
        "echo x >> evaluate.py; rm -f evaluate.py; mv evaluate.py e2.py; echo new > mine.txt; cat evaluate.py",
    )
    assert "pristine" in proc.stdout
    assert (ws / "evaluate.py").read_text() == "print('pristine')\n"
    assert (ws / "mine.txt").read_text() == "new\n"


@needs_bwrap
def test_other_runs_hidden_tmp_private_env_cleared(layout, tmp_path):
    plan, _, other = layout
    proc = run_in(plan, f"ls {other} 2>&1; echo tmp > /tmp/t && cat /tmp/t; env")
    assert "secret.txt" not in proc.stdout
    assert "tmp" in proc.stdout
    env_lines = {line.split("=", 1)[0] for line in proc.stdout.splitlines() if "=" in line}
    assert "ONLY" in env_lines and "HOME" not in env_lines


@needs_bwrap
def test_offline_means_no_network(layout):
    plan, _, _ = layout
    proc = run_in(plan, "cat /proc/net/dev")
    interfaces = [line.split(":")[0].strip() for line in proc.stdout.splitlines() if ":" in line]
    assert interfaces == ["lo"]


@needs_bwrap
def test_resolve():
    assert sandbox.resolve("none").name == "none"
    assert sandbox.resolve("auto").name == "bwrap"
    assert sandbox.resolve("bwrap").name == "bwrap"
    with pytest.raises(UserError):
        sandbox.resolve("docker")


def gpu_plan(gpus: list[int], network: bool = True) -> MountPlan:
    return MountPlan(
        mounts=[
            Mount(kind="tmpfs", target="/results"),
            Mount(kind="ro", source="/opt/venv", target="/opt/venv"),
            Mount(kind="rw", source="/results/run/workspace", target="/results/run/workspace"),
        ],
        workdir="/results/run/workspace",
        env={"PATH": "/opt/venv/bin:/usr/bin", "HOME": "/results/run/agent/home", "PROMPT": "a, b: c"},
        network=network,
        tmp="/results/run/agent/tmp",
        gpus=gpus,
    )


def test_apptainer_renders_the_plan_with_documented_flags():
    box = Apptainer("/images/agent.sif", binary="apptainer")
    plan = gpu_plan([2, 3], network=False)
    cmd = box.command(plan, ["python", "-m", "agent"])
    assert cmd[:2] == ["apptainer", "exec"]
    assert "--containall" in cmd and cmd[cmd.index("--no-mount") + 1] == "bind-paths,cwd"
    assert cmd[cmd.index("--pwd") + 1] == "/results/run/workspace"
    assert cmd[cmd.index("--home") + 1] == "/results/run/agent/home"
    assert cmd[cmd.index("--workdir") + 1] == "/results/run/agent/tmp"
    assert cmd[cmd.index("--net") : cmd.index("--net") + 3] == ["--net", "--network", "none"]
    assert "--nv" in cmd
    binds = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--bind"]
    assert binds == ["/opt/venv:/opt/venv:ro", "/results/run/workspace:/results/run/workspace:rw"]
    assert cmd[-4:] == ["/images/agent.sif", "python", "-m", "agent"]
    env = box.env(plan)
    # every variable through APPTAINERENV_ (values keep their commas); PATH prepended; HOME by --home
    assert env["APPTAINERENV_PROMPT"] == "a, b: c"
    assert env["APPTAINERENV_PREPEND_PATH"] == "/opt/venv/bin:/usr/bin"
    assert "APPTAINERENV_HOME" not in env
    assert env["APPTAINERENV_CUDA_VISIBLE_DEVICES"] == "2,3"  # --nv binds every GPU: CUDA picks ours
    open_net = box.command(gpu_plan([]), ["true"])
    assert "--net" not in open_net and "--nv" not in open_net
    assert box.env(gpu_plan([]))["APPTAINERENV_CUDA_VISIBLE_DEVICES"] == ""


def test_apptainer_with_nvidia_container_cli_binds_only_the_allotted_gpus():
    box = Apptainer("agent.sif", nvccli=True)
    plan = gpu_plan([2, 3])
    assert "--nvccli" in box.command(plan, ["true"])
    env = box.env(plan)
    assert env["NVIDIA_VISIBLE_DEVICES"] == "2,3" and env["APPTAINERENV_CUDA_VISIBLE_DEVICES"] == "0,1"


def test_apptainer_refuses_paths_its_bind_syntax_cannot_express():
    plan = gpu_plan([])
    plan.mounts.append(Mount(kind="ro", source="/data/a,b", target="/data/a,b"))
    with pytest.raises(UserError, match="cannot bind a path containing"):
        Apptainer("agent.sif").command(plan, ["true"])


def test_resolve_apptainer_says_what_is_missing():
    with pytest.raises(UserError, match="apptainer is not installed"):
        sandbox.resolve("apptainer", "agent.sif")


def test_bwrap_exposes_only_the_allotted_gpu_devices():
    cmd = Bubblewrap("bwrap").command(gpu_plan([1]), ["true"])
    dev_binds = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--dev-bind"]
    assert "/dev/nvidia1" in dev_binds and "/dev/nvidia0" not in dev_binds
    assert "CUDA_VISIBLE_DEVICES" in cmd and cmd[cmd.index("CUDA_VISIBLE_DEVICES") + 1] == "0"
    assert [
        a
        for a in Bubblewrap("bwrap").command(gpu_plan([]), ["true"])
        if "nvidia" in a and a.startswith("/dev")
    ] == []
    # /tmp is backed by the run's directory; the root and the hiding tmpfs end read-only
    assert cmd[cmd.index("/results/run/agent/tmp") - 1 : cmd.index("/results/run/agent/tmp") + 2] == [
        "--bind", "/results/run/agent/tmp", "/tmp"
    ]  # fmt: skip
    remounts = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--remount-ro"]
    assert remounts == ["/", "/results"]


def test_gpu_discovery_and_allotment(tmp_path):
    # the driver's /proc/driver/nvidia/gpus/<bus>/information, as on an H100 host
    for minor, bus, uuid in (
        (0, "0000:18:00.0", "GPU-1a2b3c4d-0000"),
        (1, "0000:2a:00.0", "GPU-5e6f7a8b-1111"),
    ):
        (tmp_path / bus).mkdir()
        (tmp_path / bus / "information").write_text(
            f"Model: \t\t NVIDIA H100\nIRQ:   \t\t 42\nGPU UUID: \t {uuid}\nDevice Minor: \t {minor}\n"
        )
    assert {m: p.name for m, p in gpus.proc_entries(tmp_path).items()} == {
        0: "0000:18:00.0",
        1: "0000:2a:00.0",
    }
    assert gpus.allot(2, {"CUDA_VISIBLE_DEVICES": "3,5,6"}) == [3, 5]
    # HTCondor names the GPUs it assigns by UUID
    assert gpus.allot(1, {"CUDA_VISIBLE_DEVICES": "GPU-5e6f7a8b-1111"}, tmp_path) == [1]
    assert gpus.allot(0, {}) == []
    with pytest.raises(ValueError, match="2 GPU"):
        gpus.allot(2, {"CUDA_VISIBLE_DEVICES": "4"})
    with pytest.raises(ValueError, match="only 0 available"):
        gpus.allot(1, {"CUDA_VISIBLE_DEVICES": ""})  # the scheduler gave this job no GPU
    with pytest.raises(ValueError, match="not a GPU index or the UUID"):
        gpus.allot(1, {"CUDA_VISIBLE_DEVICES": "GPU-99999999-2222"}, tmp_path)


def test_agent_gets_only_its_own_credentials(monkeypatch, tmp_path):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-mine")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-judge")
    ctx = AgentContext(workspace=tmp_path, home=tmp_path, prompt="p", model=models.get("ptb-tiny"), task="arith",
                       deadline=0, gpus=0, config="claude-opus-4-6")  # fmt: skip
    env = agent_environment(ctx, tmp_path, offline=False, agent=registry.get("claude-code"))
    assert env["ANTHROPIC_API_KEY"] == "sk-ant-mine" and "OPENAI_API_KEY" not in env
    noop = agent_environment(ctx, tmp_path, offline=False, agent=registry.get("noop"))
    assert "OPENAI_API_KEY" not in noop and "ANTHROPIC_API_KEY" not in noop


def test_egress_host_patterns():
    assert allowed("huggingface.co", ["huggingface.co"])
    assert allowed("cdn-lfs.huggingface.co", ["*.huggingface.co"])
    assert allowed("CDN-LFS.HuggingFace.co.", ["huggingface.co"])
    assert not allowed("evilhuggingface.co", ["huggingface.co"])
    assert not allowed("huggingface.co.evil.org", ["huggingface.co"])
    assert not allowed("pypi.org", [])


def test_grader_upstream_resolves_like_inspect():
    env = {"OPENAI_API_KEY": "k1", "JUDGE_BASE_URL": "http://j/v1", "JUDGE_API_KEY": "k2"}
    assert Upstream.from_judge("openai/gpt-5-mini", env) == Upstream(
        "gpt-5-mini", "https://api.openai.com/v1", "k1", "OPENAI_API_KEY"
    )
    assert Upstream.from_judge("openai-api/judge/m", env).base_url == "http://j/v1"
    with pytest.raises(UserError, match="OpenAI API"):
        Upstream.from_judge("anthropic/claude-x", env)
    with pytest.raises(UserError, match="NOPE_BASE_URL"):
        Upstream.from_judge("openai-api/nope/m", env)
