"""No sandbox: only the environment is cleared and rebuilt; every file is reachable."""

from __future__ import annotations

from posttrainbench.sandbox.plan import MountPlan, Sandbox


class NoSandbox(Sandbox):
    name = "none"

    def command(self, plan: MountPlan, argv: list[str]) -> list[str]:
        return list(argv)

    def env(self, plan: MountPlan) -> dict[str, str]:
        # Every GPU is visible: CUDA is only asked to use the allotted ones.
        return {**plan.env, "CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in plan.gpus)}
