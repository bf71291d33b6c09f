"""Apptainer, for clusters: the same mount plan rendered as an `apptainer exec` command line.

The container image provides the operating system; nothing of the host is visible except the
plan's binds (`--containall`, no home, no site-wide bind paths, no current directory). The
environment goes through `APPTAINERENV_*` variables (values may hold any character; `--env`
splits on commas). GPUs: `--nv` binds every GPU of the host and CUDA is told the allotted ones
through CUDA_VISIBLE_DEVICES; with `nvccli=True`, NVIDIA's container CLI binds only the allotted
devices (NVIDIA_VISIBLE_DEVICES with --contain), which needs nvidia-container-cli on the node.
Flags as documented for Apptainer 1.x (exec, bind paths, environment, GPU, networking pages).
"""

from __future__ import annotations

from posttrainbench.errors import UserError
from posttrainbench.sandbox.plan import MountPlan, Sandbox


class Apptainer(Sandbox):
    name = "apptainer"

    def __init__(self, image: str, binary: str = "apptainer", nvccli: bool = False):
        self.image, self.binary, self.nvccli = image, binary, nvccli

    def command(self, plan: MountPlan, argv: list[str]) -> list[str]:
        cmd = [self.binary, "exec", "--containall", "--no-mount", "bind-paths,cwd", "--pwd", plan.workdir]
        if "HOME" in plan.env:  # apptainer refuses HOME through APPTAINERENV_
            cmd += ["--home", plan.env["HOME"]]
        if plan.tmp:
            cmd += ["--workdir", plan.tmp]  # backs /tmp and /var/tmp (default: a small tmpfs)
        if not plan.network:
            cmd += ["--net", "--network", "none"]  # loopback only; allowed without privileges
        if plan.gpus:
            cmd.append("--nvccli" if self.nvccli else "--nv")
        for m in plan.mounts:
            if m.kind == "tmpfs":
                continue  # nothing of the host is visible unless bound: nothing to hide
            for path in (m.source or m.target, m.target):
                if "," in path or ":" in path:
                    raise UserError(f"apptainer cannot bind a path containing ',' or ':': {path}")
            cmd += ["--bind", f"{m.source or m.target}:{m.target}:{m.kind}"]
        return [*cmd, self.image, *argv]

    def env(self, plan: MountPlan) -> dict[str, str]:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
        for key, value in plan.env.items():
            if key == "HOME":
                continue
            # PATH cannot be replaced through APPTAINERENV_; prepending puts ours first.
            env[f"APPTAINERENV_{'PREPEND_PATH' if key == 'PATH' else key}"] = value
        ids = ",".join(str(i) for i in plan.gpus)
        if self.nvccli and plan.gpus:
            env["NVIDIA_VISIBLE_DEVICES"] = ids  # read by apptainer itself, not passed inside
            env["APPTAINERENV_CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(len(plan.gpus)))
        else:
            env["APPTAINERENV_CUDA_VISIBLE_DEVICES"] = ids
        return env
