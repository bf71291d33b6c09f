"""The "ptb-bwrap" code sandbox with real bubblewrap and real inspect evals: HumanEval's canonical
solutions pass inspect_evals' own scorer, empty bodies fail, and hostile code is contained."""

from __future__ import annotations

import gzip
import json
import os
import socket
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import anyio
import inspect_ai
import pytest
from inspect_ai import Task
from inspect_ai.dataset import Sample
from inspect_ai.log import EvalLog
from inspect_ai.model import ModelOutput, ModelUsage, get_model
from inspect_ai.solver import generate
from inspect_ai.util import ExecResult, SandboxUserUnsupportedError
from inspect_evals.humaneval.humaneval import find_code, record_to_sample, verify

from conftest import SHARED_DATA
from posttrainbench.evaluation.code_sandbox import (
    BwrapSandboxEnvironment,
    CodeSandboxConfig,
    CodeSandboxUnavailable,
    check_available,
    code_sandbox,
)

HUMANEVAL = SHARED_DATA / "humaneval" / "HumanEval.jsonl.gz"
REPO = Path(__file__).resolve().parents[1]
SANDBOX_ENV = {"HOME", "LANG", "PATH", "PWD", "PYTHONDONTWRITEBYTECODE"}  # PWD: bwrap sets it on --chdir
SECRET = "sk-test-secret"


@cache
def humaneval() -> tuple[dict[str, str], ...]:
    with gzip.open(HUMANEVAL, "rt") as f:
        return tuple(json.loads(line) for line in f)


def fenced(record: dict[str, str]) -> str:
    """What a chat model usually answers: prose and a fenced block with the whole function."""
    code = record["prompt"] + record["canonical_solution"]
    return f"Here is the implementation:\n\n```python\n{code}```\n\nIt passes the examples."


def run(
    logs: Path, samples: list[Sample], completion: Callable[[Sample], str], **limits: int
) -> tuple[EvalLog, float]:
    """One inspect eval: mockllm answers each sample with `completion(sample)`, verify() scores in ptb-bwrap."""
    by_input = {sample.input: completion(sample) for sample in samples}
    assert len(by_input) == len(samples), "mock answers are looked up by prompt: prompts must differ"

    def answer(input, tools, tool_choice, config) -> ModelOutput:
        output = ModelOutput.from_content("mockllm/model", by_input[input[-1].text])
        output.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return output

    task = Task(dataset=samples, solver=generate(), scorer=verify(), sandbox=code_sandbox(**limits))
    start = time.perf_counter()
    [log] = inspect_ai.eval(
        task,
        model=get_model("mockllm/model", custom_outputs=answer),
        max_samples=4,  # 2 CPUs: scoring runs 2 sandboxes at once (max_exec defaults to the CPU count)
        display="none",
        log_dir=str(logs),
    )
    elapsed = time.perf_counter() - start
    assert log.status == "success", log.error
    return log, elapsed


@pytest.fixture(autouse=True)
def _secret(monkeypatch) -> None:
    """A credential in the harness's environment, which sandboxed code must not see."""
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


def scores(log: EvalLog) -> dict[str, tuple[str, str]]:
    assert log.samples is not None
    return {
        str(s.id): (str(s.scores["verify"].value), s.scores["verify"].explanation or "")
        for s in log.samples
        if s.scores
    }


def canonical_samples() -> list[Sample]:
    return [record_to_sample()(record) for record in humaneval()]


@pytest.mark.parametrize("form", ["fenced", "bare"])
def test_canonical_solutions_pass(form, tmp_path, capsys):
    """164/164 in both forms find_code() handles: a ```python block holding the whole function (it keeps
    what follows the block's first ':\\n    ', i.e. everything after the signature) and a bare body
    continuation (no fence: used verbatim). About 15 s for 164 samples, mostly inspect's own per-sample
    overhead; a sandboxed `python -c` costs about 20 ms."""
    records = {r["task_id"]: r for r in humaneval()}
    assert len(records) == 164
    if form == "fenced":
        completion = lambda s: fenced(records[s.id])  # noqa: E731
    else:
        completion = lambda s: records[s.id]["canonical_solution"]  # noqa: E731
    first, answer = records["HumanEval/0"], completion(canonical_samples()[0])
    if form == "fenced":
        signature_end = first["prompt"].index(":\n    ") + 2
        assert find_code(answer) == first["prompt"][signature_end:] + first["canonical_solution"]
    else:
        assert find_code(answer) == answer

    log, elapsed = run(tmp_path, canonical_samples(), completion)
    results = scores(log)
    assert len(results) == 164
    failed = {
        id: stderr_of(explanation)[-300:] for id, (value, explanation) in results.items() if value != "C"
    }
    assert failed == {}
    with capsys.disabled():
        print(f"\n164 HumanEval samples ({form}) scored in ptb-bwrap in {elapsed:.1f} s")


def test_empty_bodies_fail(tmp_path):
    """`pass` returns None and every check() uses the return value: 159 fail an `assert candidate(...) ==
    ...`, 5 raise TypeError first (None has no len(), is not iterable, or is used in arithmetic)."""
    log, _ = run(tmp_path, canonical_samples(), lambda s: "    pass\n")
    results = scores(log)
    assert len(results) == 164
    assert {value for value, _ in results.values()} == {"I"}
    errors = {id: stderr_of(exp).strip().splitlines()[-1].split(":")[0] for id, (_, exp) in results.items()}
    assert Counter(errors.values()) == {"AssertionError": 159, "TypeError": 5}
    type_errors = {id for id, error in errors.items() if error == "TypeError"}
    assert type_errors == {f"HumanEval/{n}" for n in (4, 32, 33, 37, 148)}


def stderr_of(explanation: str) -> str:
    """verify() explains a failure as the code it ran, then 'The submission was incorrect', then stderr."""
    return explanation.rpartition("\nThe submission was incorrect\n\n")[2]


def report(explanation: str) -> dict:
    """Hostile snippets end with sys.exit(json.dumps(...)): the last line of stderr."""
    return json.loads(stderr_of(explanation).strip().splitlines()[-1])


def processes_with(marker: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue  # exited while we looked
    return found


@pytest.fixture
def listener() -> Iterator[tuple[int, list[str]]]:
    """A real TCP server on the host's loopback; yields its port and the peers it accepted."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    accepted: list[str] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, peer = server.accept()
            except TimeoutError:
                continue
            accepted.append(f"{peer[0]}:{peer[1]}")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    server.close()


def exec_in_sandbox(
    cmd: list[str], timeout: int | None = None, **limits: int
) -> tuple[ExecResult[str], float]:
    """One command in a fresh sandbox, outside any eval; returns its result and the seconds it took."""

    async def go() -> ExecResult[str]:
        envs = await BwrapSandboxEnvironment.sample_init("test", CodeSandboxConfig(**limits), {})
        try:
            return await envs["default"].exec(cmd, timeout=timeout)
        finally:
            await BwrapSandboxEnvironment.sample_cleanup("test", None, envs, False)

    start = time.perf_counter()
    result = anyio.run(go)
    return result, time.perf_counter() - start


FORK_COUNT = """
import os, sys, time
n = 0
for _ in range(64):
    try:
        if os.fork() == 0:
            time.sleep(3)
            os._exit(0)
        n += 1
    except OSError:
        break
print(n)
"""


@cache
def forks_allowed(processes: int = 16) -> int:
    result, _ = exec_in_sandbox(["python", "-c", FORK_COUNT], processes=processes)
    assert result.success, result.stderr
    return int(result.stdout)


def test_process_limit_holds():
    """RLIMIT_NPROC counts the sandbox's tasks (bwrap's init and the python itself included), because
    the sandbox runs as the real user nobody rather than root mapped to nobody in a user namespace."""
    assert forks_allowed(16) == 16 - 2
    assert forks_allowed(8) == 8 - 2


def test_cpu_limit_stops_a_busy_loop_before_the_wall_clock():
    result, elapsed = exec_in_sandbox(["python", "-c", "while True: pass"], timeout=20, cpu_seconds=1)
    assert result.returncode == 128 + 9  # soft = hard RLIMIT_CPU: SIGKILL after 1 s of CPU
    assert elapsed < 10


def test_hostile_code_is_contained(tmp_path, listener):
    port, accepted = listener
    socket.create_connection(("127.0.0.1", port), timeout=5).close()  # control: the listener answers
    deadline = time.monotonic() + 5
    while not accepted and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(accepted) == 1

    marker = f"ptb_marker_{uuid.uuid4().hex}"
    escapes = [REPO / f"{marker}.txt", Path("/root") / f"{marker}.txt", Path("/tmp") / f"{marker}.txt"]
    base = humaneval()[0]
    body = base["canonical_solution"]
    connect = """
import errno, json, socket, sys
def probe(host, port):
    try:
        socket.create_connection((host, port), timeout=5).close()
        return "connected"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e))
"""
    hostile = {
        "network-loopback": body + connect + f"sys.exit(json.dumps(probe('127.0.0.1', {port})))\n",
        "network-external": body + connect + "sys.exit(json.dumps(probe('1.1.1.1', 53)))\n",
        "write-outside": body
        + f"""
import errno, json, os, sys
result = {{}}
for path in {[str(p) for p in escapes]!r} + ["inside.txt"]:
    try:
        with open(path, "w") as f:
            f.write("escaped")
        result[path] = "written"
    except OSError as e:
        result[path] = errno.errorcode[e.errno]
sys.exit(json.dumps(result))
""",
        "infinite-loop": f"""    # {marker}
    while True:
        pass

import os
if os.fork() == 0:
    while True:
        pass
""",
        "memory-bomb": body
        + """
import json, sys
chunks = []
try:
    for _ in range(64):  # 4 GiB at most, should the limit fail
        chunks.append(b"x" * (64 * 1024 * 1024))
except MemoryError:
    sys.exit(json.dumps({"memory_error_after_mib": 64 * len(chunks)}))
sys.exit(json.dumps({"allocated_mib": 64 * len(chunks)}))
""",
        "environment": body
        + """
import errno, glob, json, os, sys
leaks = []
for path in glob.glob("/proc/*/environ"):
    try:
        if b"OPENAI" in open(path, "rb").read():
            leaks.append(path)
    except OSError:
        pass
try:
    os.listdir("/root")
    root = "listed"
except OSError as e:
    root = errno.errorcode[e.errno]
sys.exit(json.dumps({"env": sorted(os.environ), "proc_leaks": leaks, "root": root}))
""",
    }
    if forks_allowed() < 64:  # never run a fork bomb where the process limit does not hold
        hostile["fork-bomb"] = f"""    # {marker}
    return []

import os, time
for _ in range(10):  # 1024 processes at most, should the limit fail
    try:
        os.fork()
    except OSError:
        pass
time.sleep(60)
"""
    samples = [
        Sample(id=name, input=f"{name}: {base['prompt']}", metadata=record_to_sample()(base).metadata)
        for name in hostile
    ]
    log, _ = run(tmp_path, samples, lambda s: hostile[str(s.id)], timeout=3)
    results = scores(log)
    assert set(results) == set(hostile)
    assert {value for value, _ in results.values()} == {"I"}

    # bwrap gives the sandbox a loopback of its own, with nothing listening on it
    assert report(results["network-loopback"][1]) == "ECONNREFUSED"
    assert len(accepted) == 1  # nothing but the control reached the host's listener
    assert report(results["network-external"][1]) == "ENETUNREACH"

    writes = report(results["write-outside"][1])
    assert writes == {
        str(escapes[0]): "EROFS",
        str(escapes[1]): "EACCES",  # /root is 0700 and the sandbox is nobody
        str(escapes[2]): "written",  # the sandbox's own /tmp ...
        "inside.txt": "written",
    }
    assert not any(p.exists() for p in escapes)  # ... which is not the host's

    assert results["infinite-loop"][1].endswith("Verification timed out.")
    assert 400 <= report(results["memory-bomb"][1])["memory_error_after_mib"] <= 1024

    environment = report(results["environment"][1])
    assert environment == {"env": sorted(SANDBOX_ENV), "proc_leaks": [], "root": "EACCES"}
    assert SECRET not in results["environment"][1]

    if "fork-bomb" in hostile:
        assert results["fork-bomb"][1].endswith("Verification timed out.")
    assert processes_with(marker) == []  # the timed-out sandboxes left nothing running
    sample_times = {str(s.id): s.total_time for s in log.samples or []}
    assert max(sample_times.values()) < 20, sample_times  # verify() asks for 30 s; the config caps it at 3


def test_file_operations_stay_in_the_workdir():
    async def go() -> None:
        envs = await BwrapSandboxEnvironment.sample_init("test", None, {})
        sandbox = envs["default"].as_type(BwrapSandboxEnvironment)
        workdir = sandbox.workdir
        await sandbox.write_file("sub/dir/data.txt", "line\r\n")
        assert await sandbox.read_file("sub/dir/data.txt") == "line\r\n"
        assert await sandbox.read_file(str(workdir / "sub/dir/data.txt"), text=False) == b"line\r\n"
        edit = await sandbox.exec(["sh", "-c", "echo more >> sub/dir/data.txt && ln -s /etc/hostname link"])
        assert edit.success, edit.stderr  # what we write belongs to the sandbox's user
        assert await sandbox.read_file("sub/dir/data.txt") == "line\r\nmore\n"
        for outside in ("link", "/etc/hostname", "../x", f"{workdir}/../x"):
            with pytest.raises(PermissionError):
                await sandbox.read_file(outside)
            with pytest.raises(PermissionError):
                await sandbox.write_file(outside, "x")
        assert Path("/etc/hostname").read_text() != "x"
        with pytest.raises(FileNotFoundError):
            await sandbox.read_file("missing.txt")
        with pytest.raises(SandboxUserUnsupportedError):
            await sandbox.exec(["true"], user="root")
        await BwrapSandboxEnvironment.sample_cleanup("test", None, envs, False)
        assert not workdir.exists()

    anyio.run(go)


def test_without_bubblewrap_nothing_runs(tmp_path, monkeypatch):
    """No silent fallback: the eval stops at sandbox start-up, before any generation or scoring, and
    says what to install."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CodeSandboxUnavailable, match="apt-get install bubblewrap"):
        check_available(CodeSandboxConfig())
    calls = []

    def answer(input, tools, tool_choice, config) -> ModelOutput:
        calls.append(input)
        raise AssertionError("generation must not start without a sandbox")

    task = Task(
        dataset=[record_to_sample()(humaneval()[0])],
        solver=generate(),
        scorer=verify(),
        sandbox=code_sandbox(),
    )
    with pytest.raises(CodeSandboxUnavailable, match="apt-get install bubblewrap"):
        inspect_ai.eval(
            task,
            model=get_model("mockllm/model", custom_outputs=answer),
            display="none",
            log_dir=str(tmp_path / "logs"),
        )
    assert calls == []


def test_unusable_bubblewrap_is_reported(monkeypatch):
    with tempfile.TemporaryDirectory() as bin_dir:  # not pytest's tmp_path: nobody must be able to run it
        os.chmod(bin_dir, 0o755)
        fake = Path(bin_dir) / "bwrap"
        fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create a new namespace' >&2\nexit 1\n")
        fake.chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
        with pytest.raises(CodeSandboxUnavailable, match="No permissions to create a new namespace"):
            check_available(CodeSandboxConfig())
