"""Inspect sandbox "ptb-bwrap": runs untrusted model-generated code (HumanEval scoring) under bubblewrap.

Each sample gets a fresh host temp directory, bound writable as the sandbox's cwd and HOME. The rest of
the host is read-only, /tmp is a private size-capped tmpfs, there is no network (only a loopback of the
sandbox's own), no shared pid or ipc namespace and none of the harness's environment. Every command
also runs under rlimits (address space, CPU time, file size, processes, open files) and a wall-clock
timeout that kills the whole sandbox. Importing this module registers the provider; `code_sandbox()` is
what a Task passes as `sandbox=`. Without a working bubblewrap it fails: it never runs code unsandboxed.

Two decisions:
- When the harness is root, bwrap runs as the host user nobody (65534), not as root with `--uid 65534`
  in a user namespace. There the sandbox's kernel uid would still be root's, whose processes the kernel
  exempts from RLIMIT_NPROC (measured: 100 forks under `--nproc 32`), so a fork bomb would be unbounded.
  As the real nobody the limit holds, and root-only files (/root, 0600 secrets) are unreadable too.
- `python` and `python3` in the sandbox are the system python3 (first on /usr/local/bin:/usr/bin:/bin),
  not the harness's sys.executable: the scored code needs only the standard library, the harness's
  interpreter may live in a private home (here /root/.pyenv, unreadable to nobody), and its venv would
  put torch, inspect and posttrainbench on the untrusted code's import path. `python=` overrides it.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import stat
import subprocess
import tempfile
from contextlib import nullcontext, suppress
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any, Literal, NamedTuple, overload

import anyio
from anyio.abc import ByteReceiveStream, ByteSendStream
from inspect_ai.util import (
    ExecResult,
    OutputLimitExceededError,
    SandboxEnvironment,
    SandboxEnvironmentConfigType,
    SandboxEnvironmentLimits,
    SandboxEnvironmentSpec,
    SandboxUserUnsupportedError,
    sandboxenv,
)
from inspect_ai.util import concurrency as concurrency_limit
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import override

from posttrainbench.errors import UserError

NAME = "ptb-bwrap"
NOBODY = 65534
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
BIN_DIR = "/tmp/.ptb-bin"  # inside the sandbox's private /tmp: `python`, `python3` -> the interpreter
MiB = 1024 * 1024


class CodeSandboxUnavailable(UserError):
    """bubblewrap (or a tool the sandbox needs) is missing or cannot create a sandbox here."""


class CodeSandboxConfig(BaseModel):
    """Limits for each command run in the sandbox."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout: int = Field(30, gt=0)  # wall seconds when exec() gets none; also caps a larger one
    memory_mib: int = Field(1024, gt=0)  # address space per process (RLIMIT_AS)
    cpu_seconds: int = Field(30, gt=0)  # CPU time per process (RLIMIT_CPU)
    file_size_mib: int = Field(16, gt=0)  # largest file a process may write (RLIMIT_FSIZE)
    # Tasks (processes and threads) in the sandbox, its bwrap init included (RLIMIT_NPROC). Memory is
    # per process, so a sandbox can map up to processes x memory_mib; only a cgroup could bound the sum.
    processes: int = Field(16, gt=1)
    open_files: int = Field(256, gt=0)  # RLIMIT_NOFILE
    tmp_mib: int = Field(64, gt=0)  # size of the private /tmp
    python: str | None = None  # interpreter behind `python`/`python3`; None: python3 on SYSTEM_PATH
    max_exec: int | None = Field(None, gt=0)  # commands running at once; None: the CPUs we may use


def code_sandbox(**limits: Any) -> SandboxEnvironmentSpec:
    """`sandbox=` for an inspect Task: "ptb-bwrap" with `CodeSandboxConfig` fields as keyword arguments."""
    return SandboxEnvironmentSpec(NAME, CodeSandboxConfig(**limits))


class _Tools(NamedTuple):
    bwrap: str
    prlimit: str
    python: str


def _tools(config: CodeSandboxConfig) -> _Tools:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise CodeSandboxUnavailable(
            "bubblewrap (bwrap) is not installed; model-generated code is only run inside it: "
            "`apt-get install bubblewrap`"
        )
    prlimit = shutil.which("prlimit", path=SYSTEM_PATH)
    if prlimit is None:
        raise CodeSandboxUnavailable("prlimit is not installed: `apt-get install util-linux`")
    python = config.python or shutil.which("python3", path=SYSTEM_PATH)
    if python is None:
        raise CodeSandboxUnavailable(f"no python3 on {SYSTEM_PATH}: `apt-get install python3`")
    return _Tools(bwrap, prlimit, python)


def _as_root() -> bool:
    return os.geteuid() == 0


def _host_identity() -> dict[str, Any]:
    """Who runs bwrap: nobody when we are root (see the module docstring), else ourselves."""
    return {"user": NOBODY, "group": NOBODY, "extra_groups": []} if _as_root() else {}


def _new_workdir() -> Path:
    workdir = Path(tempfile.mkdtemp(prefix="ptb-bwrap-")).resolve()
    if _as_root():
        os.chown(workdir, NOBODY, NOBODY)
    return workdir


def _command(
    config: CodeSandboxConfig, tools: _Tools, workdir: Path, cwd: str, env: dict[str, str], cmd: list[str]
) -> list[str]:
    argv = [
        tools.bwrap,
        "--unshare-user",
        "--uid",
        str(NOBODY),
        "--gid",
        str(NOBODY),
        "--disable-userns",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-net",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
    ]
    # The workdir's parent is hidden as well when it is not /tmp: other samples' workdirs live there.
    for hidden in dict.fromkeys(["/tmp", str(workdir.parent)]):
        argv += ["--size", str(config.tmp_mib * MiB), "--tmpfs", hidden]
    argv += ["--bind", str(workdir), str(workdir)]
    for name in ("python", "python3"):
        argv += ["--symlink", tools.python, f"{BIN_DIR}/{name}"]
    argv.append("--clearenv")
    base_env = {
        "PATH": f"{BIN_DIR}:{SYSTEM_PATH}",
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    for key, value in {**base_env, **env}.items():
        argv += ["--setenv", key, value]
    # Limits are set inside the sandbox, after bwrap made the user namespace: RLIMIT_NPROC then counts
    # this sandbox's processes only, not every sandbox's (they all run as nobody).
    argv += [
        "--chdir",
        cwd,
        "--",
        tools.prlimit,
        f"--as={config.memory_mib * MiB}",
        f"--cpu={config.cpu_seconds}",
        f"--fsize={config.file_size_mib * MiB}",
        f"--nproc={config.processes}",
        f"--nofile={config.open_files}",
        "--core=0",
        "--",
        *cmd,
    ]
    return argv


def check_available(config: CodeSandboxConfig) -> str:
    """Run python in a throwaway sandbox; returns its version, raises CodeSandboxUnavailable if it fails."""
    return _probe(config, _tools(config))


@cache
def _probe(config: CodeSandboxConfig, tools: _Tools) -> str:
    workdir = _new_workdir()
    try:
        argv = _command(
            config, tools, workdir, str(workdir), {}, ["python", "-c", "import sys; print(sys.version)"]
        )
        try:
            probe = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=60,
                cwd="/",
                env={"PATH": SYSTEM_PATH},
                start_new_session=True,
                **_host_identity(),
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise CodeSandboxUnavailable(f"bubblewrap could not start a sandbox: {e}") from e
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if probe.returncode != 0:
        who = " for the user nobody" if _as_root() else ""
        raise CodeSandboxUnavailable(
            f"bubblewrap ({tools.bwrap}) could not run {tools.python} in a sandbox "
            f"(exit {probe.returncode}: {probe.stderr.strip()}); it needs unprivileged user namespaces{who} "
            "and a working install (`apt-get install bubblewrap`)"
        )
    return probe.stdout.strip()


async def _tail(stream: ByteReceiveStream | None, limit: int) -> bytes:
    """Read to EOF (so the child never blocks on a full pipe), keeping the last `limit` bytes."""
    kept = bytearray()
    if stream is not None:
        async for chunk in stream:
            kept += chunk
            if len(kept) > limit:
                del kept[: len(kept) - limit]
    return bytes(kept)


async def _feed(stream: ByteSendStream | None, data: bytes) -> None:
    if stream is None:
        return
    # A command that exits without reading its stdin is its own business: its result says what happened.
    with suppress(
        anyio.BrokenResourceError, anyio.ClosedResourceError, BrokenPipeError, ConnectionResetError
    ):
        await stream.send(data)
        await stream.aclose()


async def _run(argv: list[str], input: str | bytes | None, timeout: int) -> ExecResult[str]:
    """Run bwrap in a new process group. On timeout, SIGKILL the group and raise TimeoutError (which
    inspect expects and `verify()` scores as incorrect); killing bwrap takes its pid namespace, and so
    every process the code started, down with it (--die-with-parent, --unshare-pid)."""
    data = input.encode() if isinstance(input, str) else input
    process = await anyio.open_process(
        argv,
        stdin=subprocess.PIPE if data else subprocess.DEVNULL,
        cwd="/",
        env={"PATH": SYSTEM_PATH},
        start_new_session=True,
        **_host_identity(),
    )
    limit = SandboxEnvironmentLimits.MAX_EXEC_OUTPUT_SIZE
    output: dict[str, bytes] = {}

    async def collect(name: str, stream: ByteReceiveStream | None) -> None:
        output[name] = await _tail(stream, limit)

    try:
        with anyio.fail_after(timeout):
            async with anyio.create_task_group() as tg:
                tg.start_soon(collect, "stdout", process.stdout)
                tg.start_soon(collect, "stderr", process.stderr)
                if data:
                    tg.start_soon(_feed, process.stdin, data)
            returncode = await process.wait()
    finally:
        with anyio.CancelScope(shield=True):
            # Not yet reaped, so the pid (and group id) is still ours to signal.
            if process.returncode is None:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
            await process.aclose()
    return ExecResult(
        success=returncode == 0,
        returncode=returncode,
        stdout=output["stdout"].decode(errors="replace"),
        stderr=output["stderr"].decode(errors="replace"),
    )


def _config(config: SandboxEnvironmentConfigType | None) -> CodeSandboxConfig:
    if config is None:
        return CodeSandboxConfig()
    if isinstance(config, CodeSandboxConfig):
        return config
    raise ValueError(f"{NAME} takes a CodeSandboxConfig (see code_sandbox()), not {config!r}")


@sandboxenv(name=NAME)
class BwrapSandboxEnvironment(SandboxEnvironment):
    """One sample's sandbox: its workdir plus the limits every exec() runs under."""

    @override
    @classmethod
    def config_deserialize(cls, config: dict[str, Any]) -> BaseModel:
        return CodeSandboxConfig.model_validate(config)

    @override
    @classmethod
    async def task_init(cls, task_name: str, config: SandboxEnvironmentConfigType | None) -> None:
        await anyio.to_thread.run_sync(check_available, _config(config))

    @override
    @classmethod
    async def sample_init(
        cls, task_name: str, config: SandboxEnvironmentConfigType | None, metadata: dict[str, str]
    ) -> dict[str, SandboxEnvironment]:
        return {"default": cls(_config(config))}

    @override
    @classmethod
    async def sample_cleanup(
        cls,
        task_name: str,
        config: SandboxEnvironmentConfigType | None,
        environments: dict[str, SandboxEnvironment],
        interrupted: bool,
    ) -> None:
        for environment in environments.values():
            shutil.rmtree(environment.as_type(cls).workdir, ignore_errors=True)

    def __init__(self, config: CodeSandboxConfig) -> None:
        super().__init__()
        self.config = config
        self.tools = _tools(config)
        self.workdir = _new_workdir()
        self.max_exec = config.max_exec or len(os.sched_getaffinity(0))

    @override
    async def exec(
        self,
        cmd: list[str],
        input: str | bytes | None = None,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        user: str | None = None,
        timeout: int | None = None,
        timeout_retry: bool = True,
        concurrency: bool = True,
    ) -> ExecResult[str]:
        if user is not None:
            raise SandboxUserUnsupportedError(
                f"{NAME} runs every command as its one sandbox user, not {user!r}"
            )
        wall = min(timeout, self.config.timeout) if timeout else self.config.timeout
        argv = _command(
            self.config, self.tools, self.workdir, str(self.workdir / (cwd or ".")), env or {}, cmd
        )
        async with concurrency_limit(NAME, self.max_exec) if concurrency else nullcontext():
            return await _run(argv, input, wall)

    @override
    async def write_file(self, file: str, contents: str | bytes) -> None:
        data = contents.encode() if isinstance(contents, str) else contents
        fd = self._open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        with open(fd, "wb") as f:
            f.write(data)

    @overload
    async def read_file(self, file: str, text: Literal[True] = True) -> str: ...

    @overload
    async def read_file(self, file: str, text: Literal[False]) -> bytes: ...

    @override
    async def read_file(self, file: str, text: bool = True) -> str | bytes:
        fd = self._open(file, os.O_RDONLY)
        with open(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if stat.S_ISDIR(info.st_mode):
                raise IsADirectoryError(errno.EISDIR, "is a directory", file)
            if info.st_size > SandboxEnvironmentLimits.MAX_READ_FILE_SIZE:
                raise OutputLimitExceededError(SandboxEnvironmentLimits.MAX_READ_FILE_SIZE_STR, None)
            data = f.read()
        return data.decode("utf-8") if text else data

    def _open(self, file: str, flags: int) -> int:
        """Open `file` inside the workdir without following any symlink: the code may have planted links
        to host files, and we (possibly root) must not read or write through them. Directories (and, as
        root, files) we create are given to nobody so that the sandboxed code can use them."""
        path = PurePosixPath(file)
        if path.is_absolute():
            if not path.is_relative_to(self.workdir):
                raise PermissionError(errno.EACCES, f"outside the sandbox's directory {self.workdir}", file)
            path = path.relative_to(self.workdir)
        if ".." in path.parts or not path.parts:
            raise PermissionError(errno.EACCES, "not a file inside the sandbox's directory", file)
        creating = bool(flags & os.O_CREAT)
        dir_fd = os.open(self.workdir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            for part in path.parts[:-1]:
                if creating:
                    with suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=dir_fd)
                child = self._step(file, part, os.O_RDONLY | os.O_DIRECTORY, dir_fd)
                if creating and _as_root():
                    os.fchown(child, NOBODY, NOBODY)
                os.close(dir_fd)
                dir_fd = child
            fd = self._step(file, path.parts[-1], flags, dir_fd)
            if creating and _as_root():
                os.fchown(fd, NOBODY, NOBODY)
            return fd
        finally:
            os.close(dir_fd)

    @staticmethod
    def _step(file: str, name: str, flags: int, dir_fd: int) -> int:
        try:
            return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dir_fd)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise PermissionError(errno.EACCES, "a symlink inside the sandbox's directory", file) from e
            raise
