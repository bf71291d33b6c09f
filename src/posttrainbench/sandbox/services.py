"""The harness-side services of one sandbox session: the egress proxy (networks `allowlist` and
`none`) and the grader proxy (judged tasks). They listen on unix sockets in a short private
directory that is bound into the sandbox, served by one event loop in a background thread for as
long as the session lasts; the bridge (`sandbox/bridge.py`) makes them reachable inside."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from posttrainbench.sandbox import egress
from posttrainbench.sandbox.egress import EgressProxy
from posttrainbench.sandbox.grader import KEY_ENV, MODEL_ENV, GraderProxy, Upstream
from posttrainbench.sandbox.plan import Mount


@dataclass
class Services:
    socket_dir: Path | None = None
    egress: EgressProxy | None = None
    grader: GraderProxy | None = None
    secrets: dict[str, str] = field(default_factory=dict)

    def mounts(self) -> list[Mount]:
        return (
            [Mount(kind="ro", source=str(self.socket_dir), target=str(self.socket_dir))]
            if self.socket_dir
            else []
        )

    def env(self) -> dict[str, str]:
        if not self.grader:
            return {}
        return {KEY_ENV: self.grader.token, MODEL_ENV: self.grader.upstream.model}

    def wrap(self, argv: list[str]) -> list[str]:
        """`argv` behind the bridge when there is anything to bridge."""
        if not self.socket_dir:
            return list(argv)
        cmd = [sys.executable, "-m", "posttrainbench.sandbox.bridge"]
        if self.egress:
            cmd += ["--egress", str(self.egress.socket_path)]
        if self.grader:
            cmd += ["--grader", str(self.grader.socket_path)]
        return [*cmd, "--", *argv]

    def summary(self) -> dict:
        """What went through the proxies, for run.json."""
        out: dict = {}
        if self.egress:
            out["egress"] = egress.summarize(self.egress.log_path)
        if self.grader:
            calls = [json.loads(line) for line in _lines(self.grader.log_path)]
            out["grader"] = {
                "model": self.grader.upstream.model,
                "calls": len(calls),
                "refused": sum(1 for c in calls if c["refused"]),
                "tokens_used": self.grader.used,
                "token_budget": self.grader.budget,
            }
        return out


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.is_file() else []


@contextmanager
def running(
    log_dir: Path,
    network: str,
    allow_hosts: list[str],
    grader: Upstream | None,
    grader_budget: int,
) -> Iterator[Services]:
    """Start the services this session needs (none for an open network without a grader)."""
    if network == "open" and grader is None:
        yield Services()
        return
    socket_dir = Path(tempfile.mkdtemp(prefix="ptb-"))  # short: a socket path is limited to 107 bytes
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def call(coro) -> None:
        asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)

    services = Services(socket_dir=socket_dir)
    try:
        if network != "open":
            allow = allow_hosts if network == "allowlist" else []
            services.egress = EgressProxy(socket_dir / "egress.sock", log_dir / "egress.jsonl", allow)
            call(services.egress.start())
        if grader is not None:
            token = secrets.token_urlsafe(24)
            services.secrets[KEY_ENV] = token
            services.grader = GraderProxy(
                socket_dir / "grader.sock", log_dir / "grader.jsonl", grader, token, grader_budget
            )
            call(services.grader.start())
        yield services
    finally:
        for server in (services.egress, services.grader):
            if server is not None:
                call(server.stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        shutil.rmtree(socket_dir, ignore_errors=True)
