"""No sandbox: only the environment is cleared and rebuilt; every file is reachable."""

from __future__ import annotations

from posttrainbench.sandbox.plan import MountPlan, Sandbox


class NoSandbox(Sandbox):
    name = "none"

    def command(self, plan: MountPlan, argv: list[str]) -> list[str]:
        return list(argv)
