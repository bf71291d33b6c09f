"""`ptb new task|agent NAME`: a working package to start a new task or agent from.

Each skeleton is a small installable package (`ptb-task-NAME`, `ptb-agent-NAME`) that registers
itself through posttrainbench's entry points, with an example that works and tests that pass as
generated; the templates are under `templates/`, with `{{placeholders}}` and a `.tmpl` suffix.
"""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path
from typing import Literal

import posttrainbench
from posttrainbench.errors import UserError

Kind = Literal["task", "agent"]
NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")


def placeholders(kind: Kind, name: str) -> dict[str, str]:
    if not NAME.fullmatch(name):
        raise UserError(
            f"'{name}' is not a usable {kind} name: lower-case letters and digits, words joined by '-' "
            "(e.g. law-bench)"
        )
    words = name.split("-")
    return {
        "name": name,
        "package": f"ptb-{kind}-{name}",
        "module": f"ptb_{kind}_{'_'.join(words)}",
        "cls": "".join(w.capitalize() for w in words) + kind.capitalize(),
        "title": " ".join(w.capitalize() for w in words),
        "ptb_version": posttrainbench.__version__,
    }


def create(kind: Kind, name: str, parent: Path) -> tuple[Path, list[Path]]:
    """Write the skeleton into `parent/ptb-KIND-NAME/`; returns the folder and the files written."""
    values = placeholders(kind, name)
    target = parent / values["package"]
    if target.exists():
        raise UserError(f"{target} already exists; choose another name or --dir")
    templates = files("posttrainbench.scaffold").joinpath("templates", kind)
    written = []
    for source in sorted(_walk(Path(str(templates)))):
        rel = source.relative_to(Path(str(templates)))
        out = target / str(rel).replace("__module__", values["module"]).removesuffix(".tmpl")
        text = source.read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        written.append(out)
    return target, written


def _walk(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.tmpl") if p.is_file()]
