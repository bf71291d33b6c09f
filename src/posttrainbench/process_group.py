"""Process groups: signalling one, and listing its members from /proc."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Member:
    pid: int
    comm: str  # the executable's name
    state: str  # "R", "S", ..., "Z" for a zombie awaiting its parent's wait


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Signal every process of the group; a group that is already gone is not an error."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def members(pgid: int) -> list[Member]:
    """The processes whose process group is `pgid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        close = stat.rindex(")")  # comm may itself contain spaces and parentheses
        state, _ppid, pgrp = stat[close + 2 :].split()[:3]
        if int(pgrp) == pgid:
            found.append(Member(int(entry.name), stat[stat.index("(") + 1 : close], state))
    return found
