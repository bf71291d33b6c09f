"""Bubblewrap: unprivileged namespaces; read-only root, explicit writable binds, private /tmp."""

from __future__ import annotations

import subprocess
from functools import cache

from posttrainbench.sandbox.plan import MountPlan, Sandbox


class Bubblewrap(Sandbox):
    name = "bwrap"

    def __init__(self, binary: str = "bwrap"):
        self.binary = binary

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
        cmd = [
            self.binary,
            "--die-with-parent",
            "--unshare-pid",
            "--unshare-ipc",
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--tmpfs",
            "/tmp",
        ]
        if not plan.network:
            cmd.append("--unshare-net")
        # Order matters: later mounts go on top of earlier ones, so hiding a parent directory
        # (tmpfs) and then binding a child into it works.
        for m in plan.mounts:
            if m.kind == "tmpfs":
                cmd += ["--tmpfs", m.target]
            else:
                cmd += ["--bind" if m.kind == "rw" else "--ro-bind", m.source or m.target, m.target]
        cmd += ["--clearenv"]
        for key, value in sorted(plan.env.items()):
            cmd += ["--setenv", key, value]
        cmd += ["--chdir", plan.workdir, "--", *argv]
        return cmd

    def env(self, plan: MountPlan) -> dict[str, str]:
        # bwrap itself needs nothing; the sandboxed process gets plan.env through --setenv.
        return {"PATH": "/usr/bin:/bin"}
