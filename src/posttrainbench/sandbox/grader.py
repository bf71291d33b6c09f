"""The grader proxy: judge access for the agent's `evaluate.py` without the judge's key.

The judged tasks (arenahardwriting, healthbench) need a judge model to evaluate. The harness holds
the real key; this proxy offers the sandbox an OpenAI-compatible endpoint on a unix socket (the
in-sandbox bridge exposes it as PTB_GRADER_BASE_URL on 127.0.0.1) that
- accepts only this run's own token (PTB_GRADER_API_KEY, random per run, worthless elsewhere),
- allows only the configured grader model (streamed answers too: usage is asked for and counted),
- refuses calls once the run's token budget is spent (403, which clients do not retry),
- forwards the rest upstream with the real key, and logs every call (never its content) to
  `agent/grader.jsonl`.
A call that starts under the budget may end over it by its own usage; the next one is refused.
The budget counts what is already in the log, so it holds across sessions that share one.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web
from pydantic import BaseModel

from posttrainbench.errors import UserError
from posttrainbench.specs import utcnow

SERVICE = "ptb-grader"  # inspect's openai-api provider reads PTB_GRADER_BASE_URL / PTB_GRADER_API_KEY
MODEL_ENV = "PTB_GRADER_MODEL"
KEY_ENV = "PTB_GRADER_API_KEY"
URL_ENV = "PTB_GRADER_BASE_URL"


def judge_in_sandbox() -> str | None:
    """The judge an evaluation inside a run's sandbox uses by default: the grader proxy's model."""
    model = os.environ.get(MODEL_ENV)
    return f"openai-api/{SERVICE}/{model}" if model and os.environ.get(URL_ENV) else None


@dataclass(frozen=True)
class Upstream:
    """Where the grader's calls really go, resolved from the harness's environment the way inspect
    resolves the same model string for the final evaluation."""

    model: str  # the name sent on the wire, e.g. gpt-5-mini
    base_url: str
    api_key: str | None
    key_env: str

    @classmethod
    def from_judge(cls, judge: str, environ: dict[str, str] | None = None) -> Upstream:
        env = os.environ if environ is None else environ
        provider, _, rest = judge.partition("/")
        if provider == "openai" and rest:
            return cls(
                rest,
                env.get("OPENAI_BASE_URL", "https://api.openai.com/v1"),
                env.get("OPENAI_API_KEY"),
                "OPENAI_API_KEY",
            )
        service, _, model = rest.partition("/")
        if provider == "openai-api" and service and model:
            prefix = service.upper().replace("-", "_")
            url = env.get(f"{prefix}_BASE_URL")
            if not url:
                raise UserError(f"grader model {judge} needs {prefix}_BASE_URL in the environment")
            return cls(model, url, env.get(f"{prefix}_API_KEY"), f"{prefix}_API_KEY")
        raise UserError(
            f"the grader proxy speaks the OpenAI API: give the grader as openai/MODEL or "
            f"openai-api/SERVICE/MODEL, not {judge}"
        )


class GraderCall(BaseModel):
    time: str
    path: str
    model: str | None
    status: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    used_after: int = 0
    seconds: float = 0.0
    refused: str = ""


class GraderProxy:
    def __init__(self, socket_path: Path, log_path: Path, upstream: Upstream, token: str, budget: int):
        self.socket_path, self.log_path = socket_path, log_path
        self.upstream, self.token, self.budget = upstream, token, budget
        # The budget holds across sessions that share a log (a re-run solve, `ptb shell`).
        lines = log_path.read_text().splitlines() if log_path.is_file() else []
        self.used = sum(GraderCall.model_validate_json(line).total_tokens for line in lines)
        self.runner: web.AppRunner | None = None
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.UnixSite(self.runner, str(self.socket_path)).start()
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600))

    async def stop(self) -> None:
        if self.session:
            await self.session.close()
        if self.runner:
            await self.runner.cleanup()

    def _log(self, call: GraderCall) -> None:
        with self.log_path.open("a") as f:
            f.write(call.model_dump_json() + "\n")

    def _refuse(self, call: GraderCall, status: int, message: str) -> web.Response:
        call.status, call.refused, call.used_after = status, message, self.used
        self._log(call)
        kind = "authentication_error" if status == 401 else "permission_denied"
        return web.json_response({"error": {"message": message, "type": kind, "code": kind}}, status=status)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        t0 = time.monotonic()
        path = request.path.removeprefix("/v1")
        call = GraderCall(time=utcnow(), path=path, model=None, status=0)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._refuse(call, 401, "this endpoint only accepts the run's PTB_GRADER_API_KEY")
        if request.method == "GET" and path == "/models":
            return web.json_response(
                {"object": "list", "data": [{"id": self.upstream.model, "object": "model"}]}
            )
        if request.method != "POST":
            return self._refuse(call, 403, f"{request.method} {path} is not offered by the grader proxy")
        try:
            body = await request.json()
        except ValueError:
            return self._refuse(call, 400, "the request body is not JSON")
        call.model = body.get("model") if isinstance(body, dict) else None
        if call.model != self.upstream.model:
            return self._refuse(
                call, 403, f"only the grader model {self.upstream.model} is allowed, not {call.model}"
            )
        if self.used >= self.budget:
            return self._refuse(
                call, 403, f"the run's grader token budget is spent ({self.used}/{self.budget} tokens)"
            )
        if not self.upstream.api_key:
            return self._refuse(
                call,
                403,
                f"the harness has no {self.upstream.key_env}: judged evaluation is unavailable in this run",
            )
        answer: web.StreamResponse | None = None
        if body.get("stream"):
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        try:
            async with self.session.post(
                self.upstream.base_url.rstrip("/") + path,
                json=body,
                headers={"Authorization": f"Bearer {self.upstream.api_key}"},
            ) as resp:
                call.status = resp.status
                if body.get("stream") and resp.status == 200:
                    answer = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream"})
                    await answer.prepare(request)
                    usage: dict = {}
                    async for line in resp.content:
                        await answer.write(line)
                        if line.startswith(b"data: {") and b'"usage"' in line:
                            usage = json.loads(line[6:]).get("usage") or usage
                    await answer.write_eof()
                else:
                    data = await resp.json(content_type=None)
                    usage = (data.get("usage") if isinstance(data, dict) else None) or {}
                    answer = web.json_response(data, status=resp.status)
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            call.seconds = round(time.monotonic() - t0, 3)
            if answer is not None and answer.prepared:  # cut off mid-stream: nothing more to send
                call.refused = f"the grader upstream failed mid-stream: {type(e).__name__}"
                self._log(call)
                return answer
            return self._refuse(call, 502, f"the grader upstream failed: {type(e).__name__}")
        call.prompt_tokens = int(usage.get("prompt_tokens") or usage.get("input_tokens") or 0)
        call.completion_tokens = int(usage.get("completion_tokens") or usage.get("output_tokens") or 0)
        call.total_tokens = int(usage.get("total_tokens") or call.prompt_tokens + call.completion_tokens)
        self.used += call.total_tokens
        call.used_after = self.used
        call.seconds = round(time.monotonic() - t0, 3)
        self._log(call)
        return answer
