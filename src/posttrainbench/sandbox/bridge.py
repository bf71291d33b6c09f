"""The in-sandbox bridge: runs a command with the harness's proxies reachable over TCP.

A sandbox with an isolated network has only loopback; the proxies live outside, on unix sockets
bound into the sandbox. The bridge listens on 127.0.0.1 (ephemeral ports), forwards each
connection to its socket, sets the command's environment to match, runs the command and exits
with its status. It ignores SIGTERM and SIGINT (the command receives its own) so that the proxies
stay up through the grace period; the sandbox ends when the command does.

    python -m posttrainbench.sandbox.bridge [--egress SOCKET] [--grader SOCKET] -- CMD...
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import threading


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(1 << 16):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


async def _listen(socket_path: str) -> int:
    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(socket_path)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        up_writer.close()
        writer.close()

    server = await asyncio.start_server(forward, "127.0.0.1", 0)
    return server.sockets[0].getsockname()[1]


def proxy_env(egress_port: int | None, grader_port: int | None) -> dict[str, str]:
    env = {}
    if egress_port is not None:
        url = f"http://127.0.0.1:{egress_port}"
        for key in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            env[key] = env[key.lower()] = url
        env["NO_PROXY"] = env["no_proxy"] = "localhost,127.0.0.1,::1"
    if grader_port is not None:
        env["PTB_GRADER_BASE_URL"] = f"http://127.0.0.1:{grader_port}/v1"
    return env


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bridge")
    p.add_argument("--egress")
    p.add_argument("--grader")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("no command given")
    loop = asyncio.new_event_loop()
    ports = {
        name: loop.run_until_complete(_listen(path)) if path else None
        for name, path in (("egress", args.egress), ("grader", args.grader))
    }
    threading.Thread(target=loop.run_forever, daemon=True).start()
    env = {**os.environ, **proxy_env(ports["egress"], ports["grader"])}
    try:
        child = subprocess.Popen(command, env=env)
    except OSError as e:
        print(f"bridge: cannot start {command[0]}: {e}", file=sys.stderr)
        return 127
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # after the start: ignored signals are inherited
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    code = child.wait()
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main())
