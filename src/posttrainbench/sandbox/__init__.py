"""Sandboxes: a mount plan (plain data) rendered into a command line by a sandbox backend."""

from __future__ import annotations

import shutil

from rich.console import Console

from posttrainbench.errors import UserError
from posttrainbench.sandbox.apptainer import Apptainer
from posttrainbench.sandbox.bwrap import Bubblewrap
from posttrainbench.sandbox.none import NoSandbox
from posttrainbench.sandbox.plan import Sandbox

NAMES = ("auto", "bwrap", "apptainer", "none")
WARNING = (
    "WARNING: running the agent WITHOUT a sandbox: it can read and write everything this user can "
    "(install bubblewrap: `apt-get install bubblewrap`)."
)


def resolve(name: str, image: str | None = None) -> Sandbox:
    """`auto` picks bubblewrap when it is installed and works, else none with a loud warning."""
    if name not in NAMES:
        raise UserError(f"unknown sandbox '{name}'; valid sandboxes: {', '.join(NAMES)}")
    if name == "apptainer":
        binary = shutil.which("apptainer") or shutil.which("singularity")
        if not binary:
            raise UserError(
                "apptainer is not installed here; use --sandbox bwrap, or run on a node that has it"
            )
        if not image:
            raise UserError(
                "--sandbox apptainer needs --sandbox-image (a .sif with Python and the agent's tools)"
            )
        return Apptainer(image, binary)
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


__all__ = ["NAMES", "Apptainer", "Bubblewrap", "NoSandbox", "Sandbox", "resolve"]
