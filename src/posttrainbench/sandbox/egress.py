"""The egress proxy: the only way out of a sandbox whose network is `allowlist` or `none`.

It listens on a unix socket (bound into the sandbox; the in-sandbox bridge turns it into
HTTP(S)_PROXY on 127.0.0.1) and speaks plain HTTP proxying: `CONNECT host:port` tunnels (TLS is
not intercepted, so only host, port, byte counts and timing are known) and absolute-URI requests
for plain http. Every attempt, allowed or refused, becomes one line of `agent/egress.jsonl`.

A host pattern allows the host itself and its subdomains: `huggingface.co` allows
`cdn-lfs.huggingface.co`. `none` is the empty allowlist: every attempt is refused and logged.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel

from posttrainbench.specs import utcnow

# `--network allowlist` without --allow-host: the model hub, Python packages, source code.
DEFAULT_ALLOWLIST = (
    "huggingface.co",
    "hf.co",
    "pypi.org",
    "pythonhosted.org",
    "github.com",
    "githubusercontent.com",
)
HEAD_LIMIT = 64 * 1024
CONNECT_TIMEOUT = 30.0


class EgressEvent(BaseModel):
    time: str
    method: str
    host: str
    port: int
    allowed: bool
    status: int  # what the proxy answered: 200 tunnel/response relayed, 403 refused, 502 unreachable
    bytes_up: int = 0
    bytes_down: int = 0
    seconds: float = 0.0
    error: str = ""


def allowed(host: str, patterns: list[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == p or host.endswith("." + p) for p in (p.lower().lstrip("*.") for p in patterns))


class EgressProxy:
    def __init__(self, socket_path: Path, log_path: Path, allow: list[str]):
        self.socket_path, self.log_path, self.allow = socket_path, log_path, list(allow)
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_unix_server(self._handle, path=str(self.socket_path))

    async def stop(self) -> None:
        if self.server:
            self.server.close()
            await self.server.wait_closed()

    def _log(self, event: EgressEvent) -> None:
        with self.log_path.open("a") as f:
            f.write(event.model_dump_json() + "\n")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        t0 = time.monotonic()
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
            if method == "CONNECT":
                host, _, port_text = target.rpartition(":")
                port = int(port_text)
                host = host.strip("[]")
            else:
                url = urlsplit(target)
                if url.scheme != "http" or not url.hostname:
                    raise ValueError(target)
                host, port = url.hostname, url.port or 80
        except ValueError:
            await self._answer(writer, 400, "expected CONNECT host:port or an absolute http:// URL")
            return
        event = EgressEvent(time=utcnow(), method=method, host=host, port=port, allowed=False, status=403)
        if not allowed(host, self.allow):
            await self._answer(writer, 403, f"{host} is not allowed by this run's network policy")
            return self._log(event)
        event.allowed = True
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError) as e:
            event.status, event.error = 502, f"{type(e).__name__}: {e}"[:300]
            await self._answer(writer, 502, f"cannot reach {host}:{port}")
            return self._log(event)
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
        else:  # origin-form request line, no proxy headers, one request per connection
            path = urlsplit(target).path or "/"
            query = urlsplit(target).query
            headers = [h for h in lines[1:] if h and not h.lower().startswith(("proxy-", "connection:"))]
            request = [
                f"{method} {path}{'?' + query if query else ''} {version}",
                *headers,
                "Connection: close",
            ]
            up_writer.write(("\r\n".join(request) + "\r\n\r\n").encode("latin-1"))
            event.bytes_up += len(head)
        event.status = 200
        up, down = await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        event.bytes_up += up
        event.bytes_down += down
        event.seconds = round(time.monotonic() - t0, 3)
        self._log(event)

    @staticmethod
    async def _answer(writer: asyncio.StreamWriter, status: int, message: str) -> None:
        reason = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}[status]
        body = (message + "\n").encode()
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n".encode()
            + body
        )
        try:
            await writer.drain()
        finally:
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
    """Copy until end of stream; return the bytes copied."""
    total = 0
    try:
        while chunk := await reader.read(1 << 16):
            writer.write(chunk)
            total += len(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()
        except (ConnectionError, OSError):
            pass
    return total


def summarize(log_path: Path) -> dict:
    """Per host: connections, refusals and bytes (for run.json and reports)."""
    hosts: dict[str, dict] = {}
    if log_path.is_file():
        for line in log_path.read_text().splitlines():
            e = EgressEvent.model_validate(json.loads(line))
            h = hosts.setdefault(e.host, {"connections": 0, "refused": 0, "bytes_up": 0, "bytes_down": 0})
            h["connections"] += 1
            h["refused"] += not e.allowed
            h["bytes_up"] += e.bytes_up
            h["bytes_down"] += e.bytes_down
    return hosts
