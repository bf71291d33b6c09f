"""Tasks and agents from other installed packages, found through Python entry points.

A package adds a task or an agent by declaring an entry point in its `pyproject.toml`:

    [project.entry-points."posttrainbench.tasks"]
    my-task = "my_package.task:MyTask"

    [project.entry-points."posttrainbench.agents"]
    my-agent = "my_package.agent:MyAgent"

The object named is a Task or Agent subclass (instantiated without arguments), an instance, or a
function returning one; its `info.name` must be the entry point's name. Built-in names cannot be
taken over by a plugin. A plugin that fails to load is reported (`ptb list`, and when it is asked
for by name) and never stops the rest of the harness from working.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Generic, TypeVar

import posttrainbench
from posttrainbench.errors import UserError, unknown

TASKS_GROUP = "posttrainbench.tasks"
AGENTS_GROUP = "posttrainbench.agents"

T = TypeVar("T")


@dataclass(frozen=True)
class Origin:
    """Where a task or agent comes from: this package, or an installed plugin distribution."""

    package: str
    version: str
    entry_point: str | None = None  # module:attribute of a plugin

    @property
    def builtin(self) -> bool:
        return self.entry_point is None

    def __str__(self) -> str:
        return "built in" if self.builtin else f"{self.package} {self.version}"


BUILTIN = Origin(package="posttrainbench", version=posttrainbench.__version__)


@dataclass
class Registry(Generic[T]):
    """Everything of one kind (tasks or agents) that this installation knows, by name."""

    kind: str  # "task" or "agent", for messages
    found: dict[str, T] = field(default_factory=dict)
    origins: dict[str, Origin] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)  # plugin name -> why it could not be loaded

    def get(self, name: str) -> T:
        if name in self.found:
            return self.found[name]
        if name in self.broken:
            raise UserError(f"the {self.kind} '{name}' could not be loaded: {self.broken[name]}")
        raise unknown(self.kind, name, list(self.found))


def discover(group: str, kind: str, base: type[T], builtins: list[T]) -> Registry[T]:
    """The built-in objects plus every loadable entry point of `group` that yields a `base`."""
    registry: Registry[T] = Registry(kind=kind)
    for obj in builtins:
        name = obj.info.name  # type: ignore[attr-defined]
        registry.found[name] = obj
        registry.origins[name] = BUILTIN
    for ep in sorted(entry_points(group=group), key=lambda e: e.name):
        if ep.name in registry.found:
            where = registry.origins[ep.name]
            registry.broken.setdefault(
                f"{ep.name} ({_package(ep)})",
                f"the name is taken by the {kind} {where}; rename the entry point",
            )
            continue
        try:
            obj = _instantiate(ep, base)
        except Exception as e:  # a plugin's import or constructor error must not break the harness
            registry.broken[ep.name] = f"{ep.value} ({_package(ep)}): {type(e).__name__}: {e}"
            continue
        name = obj.info.name  # type: ignore[attr-defined]
        if name != ep.name:
            registry.broken[ep.name] = (
                f"{ep.value} ({_package(ep)}) is named '{name}' but registered as '{ep.name}'; "
                "the entry point's name must be the info.name"
            )
            continue
        registry.found[name] = obj
        registry.origins[name] = Origin(
            package=ep.dist.name if ep.dist else "?",
            version=ep.dist.version if ep.dist else "?",
            entry_point=ep.value,
        )
    return registry


def code_dir(obj: object) -> Path:
    """The folder of the top-level package that defines `obj`'s class: what a sandbox must see to import
    a plugin installed in development mode (outside the Python environment)."""
    top = type(obj).__module__.split(".")[0]
    return Path(inspect.getfile(sys.modules[top])).parent


def _package(ep: EntryPoint) -> str:
    return f"{ep.dist.name} {ep.dist.version}" if ep.dist else "unknown package"


def _instantiate(ep: EntryPoint, base: type[T]) -> T:
    target = ep.load()
    if isinstance(target, base):
        return target
    obj = target() if callable(target) else target
    if not isinstance(obj, base):
        raise TypeError(f"{ep.value} gives a {type(obj).__name__}, not a {base.__name__}")
    return obj
