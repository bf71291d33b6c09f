"""Sandboxes: a mount plan (plain data) rendered into a command line by a sandbox backend."""

from __future__ import annotations

import shutil

from rich.console import Console

from posttrainbench.errors import UserError
from posttrainbench.sandbox.bwrap import Bubblewrap
from posttrainbench.sandbox.none import NoSandbox
from posttrainbench.sandbox.plan import Sandbox

WARNING = (
    "WARNING: running the agent WITHOUT a sandbox: it can read and write everything this user can "
    "(install bubblewrap: `apt-get install bubblewrap`)."
)


def resolve(name: str) -> Sandbox:
    """`auto` picks bubblewrap when it is installed and works, else none with a loud warning."""
    if name not in ("auto", "bwrap", "none"):
        raise UserError(f"unknown sandbox '{name}'; valid sandboxes: auto, bwrap, none")
    if name != "none":
        bwrap = shutil.which("bwrap")
        if bwrap and Bubblewrap.works(bwrap):
            return Bubblewrap(bwrap)
        if name == "bwrap":
            raise UserError(
                "bubblewrap (bwrap) is not installed or cannot create namespaces here; "
                "install it (`apt-get install bubblewrap`) or pass --sandbox none"
            )
    Console(stderr=True).print(f"[bold red]{WARNING}[/]", highlight=False)
    return NoSandbox()


__all__ = ["Bubblewrap", "NoSandbox", "Sandbox", "resolve"]
