"""A scripted OpenAI-compatible judge: a local HTTP server speaking the chat-completions wire format
(plain and streamed), answering each request with a function of its messages. It stands in for the
judge providers the judged tasks call (which tests must not pay for); inspect reaches it through its
`openai-api/<service>/<model>` provider with `<SERVICE>_BASE_URL` / `<SERVICE>_API_KEY`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Reply = Callable[[list[dict]], str | None]  # None: answer with HTTP 500


class ScriptedJudge:
    def __init__(self, reply: Reply):
        self.reply = reply
        self.requests: list[list[dict]] = []
        self.auth: list[str | None] = []  # the Authorization header of each request
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                messages = body["messages"]
                judge.requests.append(messages)
                judge.auth.append(self.headers.get("Authorization"))
                text = judge.reply(messages)
                if text is None:
                    self.send_response(500)
                    self.end_headers()
                    return
                usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
                base = {"id": "chatcmpl-1", "created": int(time.time()), "model": body["model"]}
                if body.get("stream"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    chunks = [
                        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": text}}]},
                        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                        {"choices": [], "usage": usage},
                    ]
                    for chunk in chunks:
                        data = {**base, "object": "chat.completion.chunk", **chunk}
                        self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
                    self.wfile.write(b"data: [DONE]\n\n")
                    return
                payload = {
                    **base,
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                }
                raw = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedJudge:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
