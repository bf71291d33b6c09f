"""A throwaway single-node Slurm cluster (slurmctld + slurmd, munge auth) for integration tests.

`slurm_cluster(root)` writes a private slurm.conf/gres.conf with fake GPUs (character devices that
only need to exist: jobs with `--gres=gpu:1` get CUDA_VISIBLE_DEVICES=0, 1, ...), starts the
daemons in the foreground on free ports, waits until the node is idle, and on exit cancels what is
left and stops both daemons by PID. Clients reach it through `cluster.env` (SLURM_CONF). munged is
reused when one answers, else started. Needs root and slurm-wlm + munge; `available()` says why not.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/sbin"])
DAEMONS = ("slurmctld", "slurmd", "munged", "runuser")
CLIENTS = ("sbatch", "squeue", "sinfo", "scontrol", "scancel", "munge")
MUNGE_KEY = Path("/etc/munge/munge.key")
# Used as fake GPUs when device nodes cannot be created (no CAP_MKNOD): Slurm only stats them.
SPARE_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


def _which(name: str) -> str | None:
    return shutil.which(name, path=SEARCH_PATH)


def _tool(name: str) -> str:
    path = _which(name)
    if path is None:
        raise FileNotFoundError(f"{name} not found (apt-get install slurm-wlm munge)")
    return path


def available() -> str | None:
    """Why a cluster cannot run here (for pytest skips), or None when it can."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "starting Slurm daemons needs root"
    missing = [name for name in (*DAEMONS, *CLIENTS) if _which(name) is None]
    if missing:
        return f"Slurm/munge binaries missing: {', '.join(missing)} (apt-get install slurm-wlm munge)"
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return "no munge user (apt-get install munge)"
    return None


def _wait(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


@dataclass
class SlurmCluster:
    conf: Path
    dir: Path
    env: dict[str, str]

    def run(self, *args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a Slurm client (`sbatch`, `squeue`, ...) against this cluster."""
        proc = subprocess.run(
            [_tool(args[0]), *args[1:]], capture_output=True, text=True, env=self.env, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}\n{self.log_tail()}"
            )
        return proc

    def sbatch(self, *args: str) -> str:
        """Submit a batch job; returns its id."""
        return self.run("sbatch", "--parsable", *args).stdout.strip().split(";")[0]

    def squeue(self) -> dict[str, str]:
        """Job id -> state (PENDING, RUNNING, COMPLETING, ...) of the jobs still in the queue."""
        out = self.run("squeue", "-h", "-o", "%i %T").stdout
        return dict(line.split(maxsplit=1) for line in out.splitlines() if line.strip())

    def wait_gone(self, *job_ids: str, timeout: float = 30) -> None:
        """Wait until the jobs (all jobs when none named) have left the queue."""

        def gone() -> bool:
            queued = self.squeue()
            return not (set(job_ids) & queued.keys() if job_ids else queued)

        if not _wait(gone, timeout):
            raise TimeoutError(f"jobs still queued after {timeout}s: {self.squeue()}\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of both daemon logs (for assertion messages)."""
        parts = []
        for name in ("slurmctld", "slurmd"):
            log = self.dir / "log" / f"{name}.log"
            if not log.exists() or log.stat().st_size == 0:
                log = self.dir / "log" / f"{name}.out"  # what it printed before opening its log file
            text = log.read_text(errors="replace") if log.exists() else "(no log)\n"
            parts.append(f"--- {log} ---\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(parts)


def _free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _munge_works() -> bool:
    proc = subprocess.run([_tool("munge"), "-n"], capture_output=True, timeout=10)
    return proc.returncode == 0


def _ensure_munged() -> None:
    """Reuse a running munged; else make sure a key exists and start one as the munge user."""
    if _munge_works():
        return
    user = pwd.getpwnam("munge")
    for path in (Path("/run/munge"), Path("/var/lib/munge"), Path("/var/log/munge"), MUNGE_KEY.parent):
        path.mkdir(parents=True, exist_ok=True)
        os.chown(path, user.pw_uid, user.pw_gid)
    if not MUNGE_KEY.exists():
        if _which("mungekey"):
            subprocess.run([_tool("mungekey"), "--create", f"--keyfile={MUNGE_KEY}"], check=True)
        else:
            subprocess.run([_tool("create-munge-key"), "-f"], check=True)
        os.chown(MUNGE_KEY, user.pw_uid, user.pw_gid)
        MUNGE_KEY.chmod(0o600)
    # --force: get past a stale socket left by a munged that was killed.
    proc = subprocess.run(
        [_tool("runuser"), "-u", "munge", "--", _tool("munged"), "--force"], capture_output=True, text=True
    )
    if proc.returncode != 0 or not _wait(_munge_works, 10):
        raise RuntimeError(f"munged did not start ({proc.returncode}): {proc.stdout}{proc.stderr}")


def _fake_gpus(where: Path, count: int) -> list[str]:
    """`count` distinct character devices to list as GPUs in gres.conf."""
    paths = [where / f"gpu{i}" for i in range(count)]
    try:
        for path in paths:
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a copy of /dev/null
    except PermissionError:  # no CAP_MKNOD (some containers)
        if count > len(SPARE_DEVICES):
            raise ValueError(
                f"cannot create device nodes here, so at most {len(SPARE_DEVICES)} fake GPUs"
            ) from None
        return list(SPARE_DEVICES[:count])
    return [str(path) for path in paths]


def _write_configs(cluster_dir: Path, short: Path, gpus: int) -> Path:
    host = socket.gethostname().split(".")[0]
    cpus = len(os.sched_getaffinity(0))
    mem_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    real_memory = max(mem_mb * 9 // 10, 100)
    ctld_port, slurmd_port = _free_ports(2)
    d = cluster_dir
    gres = f" Gres=gpu:{gpus}" if gpus else ""
    conf = cluster_dir / "slurm.conf"
    conf.write_text(
        f"""ClusterName=ptb
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
AuthType=auth/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={short}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU={real_memory // cpus}
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={d}/jobcomp.txt
GresTypes=gpu
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SlurmdParameters=config_overrides
KillWait=2
SchedulerParameters=batch_sched_delay=0
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={real_memory}{gres} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""
    )
    # slurmd reads gres.conf from the directory of slurm.conf.
    lines = [f"NodeName={host} Name=gpu File={path}\n" for path in _fake_gpus(short, gpus)]
    (cluster_dir / "gres.conf").write_text("".join(lines))
    return conf


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextmanager
def slurm_cluster(root: Path, gpus: int = 2, timeout: float = 30) -> Iterator[SlurmCluster]:
    """Start a fresh cluster under a new directory in `root`; stop it (and its jobs) on exit."""
    if reason := available():
        raise RuntimeError(reason)
    root.mkdir(parents=True, exist_ok=True)
    cluster_dir = Path(tempfile.mkdtemp(prefix="slurm-", dir=root))  # fresh: no state from before
    with ExitStack() as stack:
        # slurmstepd puts unix sockets in the spool dir: keep its path short (sun_path is 108 bytes).
        short = Path(tempfile.mkdtemp(prefix="ptb-slurm-", dir="/tmp"))
        stack.callback(shutil.rmtree, short, ignore_errors=True)
        for sub in (cluster_dir / "state", cluster_dir / "log", short / "spool"):
            sub.mkdir()
        conf = _write_configs(cluster_dir, short, gpus)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SQUEUE_"))}
        env["SLURM_CONF"] = str(conf)
        cluster = SlurmCluster(conf=conf, dir=cluster_dir, env=env)
        _ensure_munged()

        procs: dict[str, subprocess.Popen] = {}
        for name in ("slurmctld", "slurmd"):
            out = stack.enter_context(open(cluster_dir / "log" / f"{name}.out", "wb"))
            procs[name] = subprocess.Popen(
                [_tool(name), "-D", "-f", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # a Ctrl-C reaches pytest, which then stops them in order
            )
            stack.callback(_stop, procs[name])  # slurmd is stopped before slurmctld
        stack.callback(_cancel_all, cluster, procs["slurmctld"])

        def idle() -> bool:
            dead = [name for name, proc in procs.items() if proc.poll() is not None]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} exited during start-up\n{cluster.log_tail()}")
            state = cluster.run("sinfo", "-h", "-o", "%t", check=False)
            return state.returncode == 0 and state.stdout.strip() == "idle"

        if not _wait(idle, timeout):
            state = cluster.run("sinfo", "-h", "-o", "%t %E", check=False)
            raise TimeoutError(
                f"node not idle after {timeout}s: {state.stdout}{state.stderr}\n{cluster.log_tail()}"
            )
        yield cluster


def _cancel_all(cluster: SlurmCluster, slurmctld: subprocess.Popen) -> None:
    if slurmctld.poll() is not None:
        return
    try:
        if jobs := cluster.squeue():
            cluster.run("scancel", *jobs, check=False)
            cluster.wait_gone(timeout=20)
    except (RuntimeError, TimeoutError, subprocess.TimeoutExpired):
        pass  # stopping the daemons must still happen
