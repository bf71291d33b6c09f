"""Bubblewrap: unprivileged namespaces. The sandbox's root is empty except for the system
directories below (read-only) and what the mount plan binds; /tmp is private, /dev minimal with
only the allotted GPUs, and the root itself is read-only once everything is mounted."""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache

from posttrainbench.sandbox import gpus
from posttrainbench.sandbox.plan import MountPlan, Sandbox

# What programs need to run: binaries, libraries, configuration (certificates, DNS, users), and
# /sys for hardware discovery. Not /home, /root, /var, /srv, /mnt, /media or /run.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/sys")


class Bubblewrap(Sandbox):
    name = "bwrap"

    def __init__(self, binary: str = "bwrap"):
        self.binary = shutil.which(binary) or binary  # bwrap starts with a minimal PATH (see env)

    @staticmethod
    @cache
    def works(binary: str) -> bool:
        try:
            probe = subprocess.run(
                [binary, "--ro-bind", "/", "/", "--unshare-pid", "--dev", "/dev", "true"],
                capture_output=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return probe.returncode == 0

    def command(self, plan: MountPlan, argv: list[str]) -> list[str]:
        cmd = [self.binary, "--die-with-parent", "--unshare-pid", "--unshare-ipc"]
        if os.geteuid() == 0:
            # Started by root (containers, some clusters), bwrap leaves the sandboxed process every
            # capability: it could mount, create device nodes (the NVIDIA tools then add every
            # GPU's) or remount the root read-write. Dropped from the bounding set, none come back.
            cmd += ["--cap-drop", "ALL"]
        if not plan.network:
            cmd.append("--unshare-net")
        for d in SYSTEM_DIRS:
            if os.path.islink(d):
                cmd += ["--symlink", os.readlink(d), d]
            elif os.path.isdir(d):
                cmd += ["--ro-bind", d, d]
        resolv = os.path.realpath("/etc/resolv.conf")  # often a link into /run
        if plan.network and not resolv.startswith("/etc/") and os.path.isfile(resolv):
            cmd += ["--ro-bind", resolv, resolv]
        cmd += ["--dev", "/dev"]
        for dev in gpus.device_files(plan.gpus):
            cmd += ["--dev-bind", dev, dev]
        cmd += ["--proc", "/proc"]
        if gpus.PROC_GPUS.is_dir():
            # As NVIDIA's container runtime does: the driver enumerates GPUs from this directory,
            # so only the allotted ones stay listed (and are renumbered from 0 for CUDA).
            cmd += ["--tmpfs", str(gpus.PROC_GPUS)]
            for minor, entry in gpus.proc_entries().items():
                if minor in plan.gpus:
                    cmd += ["--ro-bind", str(entry), str(entry)]
        cmd += ["--bind", plan.tmp, "/tmp"] if plan.tmp else ["--tmpfs", "/tmp"]
        # Order matters: later mounts go on top of earlier ones, so hiding a parent directory
        # (tmpfs) and then binding a child into it works.
        for m in plan.mounts:
            if m.kind == "tmpfs":
                cmd += ["--tmpfs", m.target]
            else:
                cmd += ["--bind" if m.kind == "rw" else "--ro-bind", m.source or m.target, m.target]
        # Nothing is writable but the plan's rw binds and /tmp: the root and the hiding tmpfs
        # mounts become read-only once everything is mounted on them.
        for target in ["/", *(m.target for m in plan.mounts if m.kind == "tmpfs")]:
            cmd += ["--remount-ro", target]
        cmd.append("--clearenv")
        env = dict(plan.env)
        if plan.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(len(plan.gpus)))
        for key, value in sorted(env.items()):
            cmd += ["--setenv", key, value]
        cmd += ["--chdir", plan.workdir, "--", *argv]
        return cmd

    def env(self, plan: MountPlan) -> dict[str, str]:
        # bwrap itself needs nothing; the sandboxed process gets plan.env through --setenv.
        return {"PATH": "/usr/bin:/bin"}
