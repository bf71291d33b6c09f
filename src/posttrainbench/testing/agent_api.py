"""A scripted local model API for driving the real agent CLIs in tests.

One HTTP server on 127.0.0.1 (ephemeral port, in a thread) speaks four wire formats: Anthropic
Messages (`POST /v1/messages`, Claude Code), OpenAI Responses (`POST /v1/responses`, Codex), Gemini
(`:generateContent` / `:streamGenerateContent`, Gemini CLI) and OpenAI Chat Completions
(`POST /v1/chat/completions`, OpenCode), as server-sent events where the request streams.

A request that carries tools is a *main* request: it consumes the next step of the script (a call
of the CLI's own shell tool, a text reply, or an HTTP error in the provider's body shape) and reports
a fixed usage. Any other request (Gemini CLI's model router, OpenCode's title, ...) is *auxiliary*:
it gets a canned answer and reports zero usage, so the token totals a CLI should report are
`ScriptedAPI.totals()`. Every request is recorded in `ScriptedAPI.requests`.

    with ScriptedAPI([ShellCall("touch marker"), Reply("Done.")], usage=WireUsage(1200, 70, 800)) as api:
        ...  # run the CLI with its base URL set to api.url
        assert api.totals() == WireUsage(2400, 140, 1600)
"""

from __future__ import annotations

import gzip
import itertools
import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class ShellCall:
    """Call the CLI's own shell tool with this command line (after `reasoning`, if any)."""

    command: str
    reasoning: str = ""


@dataclass(frozen=True)
class Reply:
    """A final text message (no tool call), after `reasoning` if any."""

    text: str
    reasoning: str = ""


@dataclass(frozen=True)
class Fail:
    """Answer with an HTTP error in the provider's own body shape. `times` main requests get it
    (the CLI's retries included); None: every main request from here on gets it."""

    status: int  # 401, 429, 529 (Anthropic's "overloaded"), 500, ...
    times: int | None = None


Step = ShellCall | Reply | Fail


@dataclass(frozen=True)
class WireUsage:
    """Tokens each main response reports, in the wire's own terms: `input` is the wire's input count
    (Anthropic: excluding cache reads; OpenAI and Gemini: including them), `cached` its cache reads."""

    input: int = 1200
    output: int = 70
    cached: int = 800
    reasoning: int = 0

    def __add__(self, other: WireUsage) -> WireUsage:
        return WireUsage(*(a + b for a, b in zip(self.as_tuple(), other.as_tuple(), strict=True)))

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.input, self.output, self.cached, self.reasoning)


ZERO = WireUsage(0, 0, 0, 0)


@dataclass
class Request:
    """One request the server answered."""

    api: str  # anthropic | responses | gemini | chat | other
    method: str
    path: str  # with the query string
    auth: str | None  # Authorization / x-api-key / x-goog-api-key header
    main: bool
    status: int
    usage: WireUsage | None  # what the response reported (None: none, e.g. an error)
    body: Any  # the parsed JSON body (None for GET)
    step: Step | None = None


# Shell tools as named in the tools arrays: Claude Code Bash {command}, Codex exec_command {cmd}
# (older versions: shell / shell_command), Gemini CLI run_shell_command {command}, OpenCode bash {command}.
SHELL_TOOLS = ("Bash", "shell_command", "shell", "exec_command", "run_shell_command", "bash")

DEFAULT_FINAL = Reply("Done.")

_ids = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}{next(_ids):06d}"


def _shell_args(schema: dict, command: str) -> dict:
    """Arguments for a shell tool: the command under its key (a string, or an argv list where the
    schema wants an array) plus a placeholder for any other required string field."""
    props = schema.get("properties", {})
    args: dict[str, Any] = {}
    for key in ("command", "cmd"):
        if key in props:
            args[key] = ["bash", "-lc", command] if props[key].get("type") == "array" else command
            break
    for key in schema.get("required", []):
        if key not in args and props.get(key, {}).get("type") == "string":
            args[key] = "Run the scripted command"
    return args


def _find_tool(tools: list[tuple[str, dict]]) -> tuple[str, dict]:
    by_name = dict(tools)
    for name in SHELL_TOOLS:
        if name in by_name:
            return name, by_name[name]
    raise LookupError(f"no shell tool among {sorted(by_name)}")


def _json_for_schema(schema: dict) -> Any:
    """A value satisfying a (simple) JSON schema; Gemini CLI's router and next-speaker checks ask
    for JSON objects this way."""
    kind = schema.get("type", "object")
    if isinstance(kind, str):
        kind = kind.lower()
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object":
        return {k: _json_for_schema(v) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    return "scripted"


# Canned values for Gemini CLI's JSON side calls: route to flash; the user speaks next (so the
# CLI does not continue on its own after a final message).
GEMINI_JSON_CHOICES = {"model_choice": "flash", "next_speaker": "user", "complexity_score": 1}


class ScriptedAPI:
    """The server; use as a context manager. `url` is the base URL without `/v1`."""

    def __init__(self, script: list[Step], usage: WireUsage | None = None, final: Reply = DEFAULT_FINAL):
        self.script = list(script)
        self.usage = usage or WireUsage()
        self.final = final  # once the script is spent
        self.requests: list[Request] = []
        self._fail_left: int | None = None  # requests left for the current Fail step
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- what tests read ------------------------------------------------------------------------
    def main_requests(self) -> list[Request]:
        return [r for r in self.requests if r.main]

    def totals(self, requests: Iterable[Request] | None = None) -> WireUsage:
        """The sum of the usage the responses reported (of `requests`, default all)."""
        total = ZERO
        for r in self.requests if requests is None else requests:
            if r.usage is not None:
                total = total + r.usage
        return total

    # -- the script ----------------------------------------------------------------------------
    def next_step(self) -> Step:
        with self._lock:
            if not self.script:
                return self.final
            step = self.script[0]
            if isinstance(step, Fail):
                if self._fail_left is None:
                    self._fail_left = step.times if step.times is not None else -1
                if self._fail_left > 0:
                    self._fail_left -= 1
                if self._fail_left == 0:
                    self.script.pop(0)
                    self._fail_left = None
                return step
            return self.script.pop(0)


def _sse(events: list[tuple[str | None, dict | str]]) -> bytes:
    out = []
    for name, data in events:
        payload = data if isinstance(data, str) else json.dumps(data)
        out.append((f"event: {name}\n" if name else "") + f"data: {payload}\n\n")
    return "".join(out).encode()


# -- Anthropic Messages ---------------------------------------------------------------------------
ANTHROPIC_ERRORS = {
    400: ("invalid_request_error", "Invalid request"),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    429: ("rate_limit_error", "This request would exceed your organization's rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


def anthropic_error(status: int) -> dict:
    kind, message = ANTHROPIC_ERRORS.get(status, ("api_error", "Internal server error"))
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": _id("req_")}


def anthropic_reply(body: dict, step: Step, usage: WireUsage) -> tuple[bytes, str]:
    """A Messages API reply: SSE when the request streams, else one JSON message."""
    start_usage = {
        "input_tokens": usage.input,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": usage.cached,
        "output_tokens": min(usage.output, 1),  # like the real API: the final count is in message_delta
    }
    blocks: list[tuple[dict, list[dict], dict]] = []  # (block at start, its deltas, the complete block)
    if step.reasoning:
        deltas = [
            {"type": "thinking_delta", "thinking": step.reasoning},
            {"type": "signature_delta", "signature": "c2NyaXB0ZWQ="},
        ]
        complete = {"type": "thinking", "thinking": step.reasoning, "signature": "c2NyaXB0ZWQ="}
        blocks.append(({"type": "thinking", "thinking": "", "signature": ""}, deltas, complete))
    if isinstance(step, ShellCall):
        name, schema = _find_tool([(t["name"], t.get("input_schema", {})) for t in body["tools"]])
        call = {"type": "tool_use", "id": _id("toolu_"), "name": name, "input": {}}
        args = _shell_args(schema, step.command)
        blocks.append(
            (call, [{"type": "input_json_delta", "partial_json": json.dumps(args)}], {**call, "input": args})
        )
        stop = "tool_use"
    else:
        complete = {"type": "text", "text": step.text}
        blocks.append(({"type": "text", "text": ""}, [{"type": "text_delta", "text": step.text}], complete))
        stop = "end_turn"
    message = {
        "id": _id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    final_usage = {**start_usage, "output_tokens": usage.output}
    if not body.get("stream"):
        content = [complete for _, _, complete in blocks]
        reply = {**message, "content": content, "stop_reason": stop, "usage": final_usage}
        return json.dumps(reply).encode(), "application/json"
    events: list[tuple[str | None, dict | str]] = [
        ("message_start", {"type": "message_start", "message": message})
    ]
    for index, (block, deltas, _) in enumerate(blocks):
        events.append(
            ("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})
        )
        for delta in deltas:
            events.append(
                ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    delta = {"stop_reason": stop, "stop_sequence": None}
    events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": final_usage}))
    events.append(("message_stop", {"type": "message_stop"}))
    return _sse(events), "text/event-stream"


# -- OpenAI (Responses and Chat Completions) ------------------------------------------------------
OPENAI_ERRORS = {
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided: test-key."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
    529: ("server_error", None, "The server is overloaded or not ready yet."),
}


def openai_error(status: int) -> dict:
    kind, code, message = OPENAI_ERRORS.get(status, ("server_error", None, "Server error."))
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def responses_stream(body: dict, step: Step, usage: WireUsage) -> bytes:
    base = {
        "id": _id("resp_"),
        "object": "response",
        "created_at": int(time.time()),
        "model": body.get("model"),
    }
    events: list[tuple[str | None, dict | str]] = []

    def emit(kind: str, **data: Any) -> None:
        events.append((kind, {"type": kind, **data}))

    emit("response.created", response={**base, "status": "in_progress", "output": []})
    output: list[dict] = []
    if step.reasoning:
        index = len(output)
        item = {"type": "reasoning", "id": _id("rs_"), "summary": []}
        emit("response.output_item.added", output_index=index, item=item)
        part = {"type": "summary_text", "text": ""}
        emit(
            "response.reasoning_summary_part.added",
            item_id=item["id"],
            output_index=index,
            summary_index=0,
            part=part,
        )
        emit(
            "response.reasoning_summary_text.delta",
            item_id=item["id"],
            output_index=index,
            summary_index=0,
            delta=step.reasoning,
        )
        emit(
            "response.reasoning_summary_text.done",
            item_id=item["id"],
            output_index=index,
            summary_index=0,
            text=step.reasoning,
        )
        done = {**item, "summary": [{"type": "summary_text", "text": step.reasoning}]}
        emit("response.output_item.done", output_index=index, item=done)
        output.append(done)
    index = len(output)
    if isinstance(step, ShellCall):
        tools = [
            (t.get("name", ""), t.get("parameters", {})) for t in body["tools"] if t.get("type") == "function"
        ]
        name, schema = _find_tool(tools)
        args = json.dumps(_shell_args(schema, step.command))
        item = {"type": "function_call", "id": _id("fc_"), "call_id": _id("call_"), "name": name}
        emit("response.output_item.added", output_index=index, item={**item, "arguments": ""})
        emit("response.function_call_arguments.delta", item_id=item["id"], output_index=index, delta=args)
        done = {**item, "arguments": args, "status": "completed"}
    else:
        item = {
            "type": "message",
            "id": _id("msg_"),
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        emit("response.output_item.added", output_index=index, item=item)
        emit(
            "response.output_text.delta",
            item_id=item["id"],
            output_index=index,
            content_index=0,
            delta=step.text,
        )
        content = [{"type": "output_text", "text": step.text, "annotations": []}]
        done = {**item, "status": "completed", "content": content}
    emit("response.output_item.done", output_index=index, item=done)
    output.append(done)
    wire_usage = {
        "input_tokens": usage.input,
        "input_tokens_details": {"cached_tokens": usage.cached},
        "output_tokens": usage.output,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning},
        "total_tokens": usage.input + usage.output,
    }
    emit(
        "response.completed", response={**base, "status": "completed", "output": output, "usage": wire_usage}
    )
    return _sse(events)


def chat_reply(body: dict, step: Step, usage: WireUsage) -> tuple[bytes, str]:
    """A Chat Completions reply: SSE chunks (then a usage chunk) when the request streams, else JSON."""
    base = {"id": _id("chatcmpl-"), "created": int(time.time()), "model": body.get("model")}
    message: dict[str, Any] = {"role": "assistant", "content": None}
    if step.reasoning:
        message["reasoning_content"] = step.reasoning  # the field DeepSeek-style servers and vLLM use
    if isinstance(step, ShellCall):
        tools = [(t["function"]["name"], t["function"].get("parameters", {})) for t in body["tools"]]
        name, schema = _find_tool(tools)
        function = {"name": name, "arguments": json.dumps(_shell_args(schema, step.command))}
        message["tool_calls"] = [{"id": _id("call_"), "type": "function", "function": function}]
        finish = "tool_calls"
    else:
        message["content"] = step.text
        finish = "stop"
    wire_usage = {
        "prompt_tokens": usage.input,
        "completion_tokens": usage.output,
        "total_tokens": usage.input + usage.output,
        "prompt_tokens_details": {"cached_tokens": usage.cached},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning},
    }
    if not body.get("stream"):
        choice = {"index": 0, "message": message, "finish_reason": finish}
        reply = {**base, "object": "chat.completion", "choices": [choice], "usage": wire_usage}
        return json.dumps(reply).encode(), "application/json"
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    if step.reasoning:
        deltas.append({"reasoning_content": step.reasoning})
    if "tool_calls" in message:
        deltas.append({"tool_calls": [{"index": 0, **message["tool_calls"][0]}]})
    else:
        deltas.append({"content": step.text})
    chunks = [{"choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    chunks += [
        {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]},
        {"choices": [], "usage": wire_usage},
    ]
    data = [(None, {**base, "object": "chat.completion.chunk", **c}) for c in chunks]
    return _sse([*data, (None, "[DONE]")]), "text/event-stream"


# -- Gemini -------------------------------------------------------------------------------------
GEMINI_ERRORS = {
    400: ("INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "Permission denied."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: ("INTERNAL", "An internal error has occurred."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    529: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
}


def gemini_error(status: int) -> dict:
    kind, message = GEMINI_ERRORS.get(status, ("INTERNAL", "An internal error has occurred."))
    return {"error": {"code": status, "message": message, "status": kind}}


def gemini_response(path: str, body: dict, step: Step, usage: WireUsage) -> dict:
    parts: list[dict[str, Any]] = []
    if step.reasoning:
        parts.append({"text": step.reasoning, "thought": True})
    if isinstance(step, ShellCall):
        decls = [
            (d["name"], d.get("parametersJsonSchema") or d.get("parameters") or {})
            for t in body["tools"]
            for d in t.get("functionDeclarations", [])
        ]
        name, schema = _find_tool(decls)
        parts.append({"functionCall": {"name": name, "args": _shell_args(schema, step.command)}})
    else:
        parts.append({"text": step.text})
    return {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {
            "promptTokenCount": usage.input,
            "candidatesTokenCount": usage.output,
            "cachedContentTokenCount": usage.cached,
            "thoughtsTokenCount": usage.reasoning,
            "totalTokenCount": usage.input + usage.output + usage.reasoning,
        },
        "modelVersion": path.rsplit("/", 1)[-1].split(":")[0],
        "responseId": _id("gemini-"),
    }


def gemini_aux(path: str, body: dict) -> dict:
    """A call without tools (Gemini CLI's model router, next-speaker check, ...): JSON matching the
    requested schema, or a short text."""
    config = body.get("generationConfig", {})
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    if schema:
        value = _json_for_schema(schema)
        if isinstance(value, dict):
            value.update({k: v for k, v in GEMINI_JSON_CHOICES.items() if k in value})
        text = json.dumps(value)
    else:
        text = "Scripted"
    return gemini_response(path, body, Reply(text), ZERO)


# -- dispatch -----------------------------------------------------------------------------------
def _api_of(path: str) -> str:
    if path.endswith("/messages"):
        return "anthropic"
    if path.endswith("/responses"):
        return "responses"
    if path.endswith("/chat/completions"):
        return "chat"
    if path.endswith(":generateContent") or path.endswith(":streamGenerateContent"):
        return "gemini"
    return "other"


def _has_tools(api: str, body: dict) -> bool:
    tools = body.get("tools") or []
    if api == "gemini":
        return any(t.get("functionDeclarations") for t in tools)
    return bool(tools)


def _reply(kind: str, path: str, body: dict, step: Step, usage: WireUsage, main: bool) -> tuple[bytes, str]:
    if kind == "anthropic":
        return anthropic_reply(body, step, usage)
    if kind == "chat":
        return chat_reply(body, step, usage)
    if kind == "responses":
        return responses_stream(body, step, usage), "text/event-stream"
    reply = gemini_response(path, body, step, usage) if main else gemini_aux(path, body)
    if path.endswith(":streamGenerateContent"):
        return _sse([(None, reply)]), "text/event-stream"
    return json.dumps(reply).encode(), "application/json"


def _handler(api: ScriptedAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    data += self.rfile.read(size)
                    self.rfile.readline()
            else:
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Encoding") == "gzip":
                data = gzip.decompress(data)
            return data

        def _send(self, status: int, payload: bytes, content_type: str, headers: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)

        def _auth(self) -> str | None:
            for name in ("Authorization", "x-api-key", "x-goog-api-key"):
                if self.headers.get(name):
                    return self.headers[name]
            return None

        def do_GET(self) -> None:
            models = urlsplit(self.path).path.endswith("/models")
            status = 200 if models else 404
            api.requests.append(Request("other", "GET", self.path, self._auth(), False, status, None, None))
            payload = {"object": "list", "data": []} if models else {"error": "not found"}
            self._send(status, json.dumps(payload).encode(), "application/json")

        def do_POST(self) -> None:
            raw = self._read_body()
            body = json.loads(raw) if raw else {}
            path = urlsplit(self.path).path
            kind = _api_of(path)
            main = kind != "other" and _has_tools(kind, body)
            record = Request(kind, "POST", self.path, self._auth(), main, 200, None, body)
            api.requests.append(record)
            if kind == "other":
                record.status = 404
                self._send(404, b'{"error": "not found"}', "application/json")
                return
            step = api.next_step() if main else Reply("Scripted title")
            record.step = step
            if isinstance(step, Fail):
                record.status = step.status
                error = {"anthropic": anthropic_error, "gemini": gemini_error}.get(kind, openai_error)
                # OpenCode retries 5xx/429 five times, at once given these (else after 2 to 30 s each).
                headers = {"retry-after": "0", "retry-after-ms": "0"}
                self._send(step.status, json.dumps(error(step.status)).encode(), "application/json", headers)
                return
            usage = api.usage if main else ZERO
            try:
                payload, content_type = _reply(kind, path, body, step, usage, main)
            except Exception as e:  # a script the request cannot take (e.g. no shell tool): say so
                record.status = 500
                self._send(500, json.dumps({"error": {"message": repr(e)}}).encode(), "application/json")
                return
            record.usage = usage
            self._send(200, payload, content_type)

    return Handler
