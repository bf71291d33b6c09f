"""Network policies and the grader proxy, from inside real sandboxes (`ptb shell` on real runs):
`none` reaches nothing but the proxies, `allowlist` reaches only allowed hosts, every attempt is
logged; the agent's evaluate.py reaches the judge through the grader proxy, which refuses other
models, other keys and calls over the token budget, and never lets the judge's key in."""

from __future__ import annotations

import json
import shutil
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import SHARED_DATA, ptb, record, run_ptb, script_agent
from judge_server import ScriptedJudge
from posttrainbench import models, settings

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

NET_PROBE = r"""
import json, os, socket, sys, urllib.parse
port = int(sys.argv[1])
out = {}
try:
    socket.create_connection(("127.0.0.1", port), timeout=3).close()
    out["direct"] = True
except OSError:
    out["direct"] = False
proxy = urllib.parse.urlsplit(os.environ["HTTPS_PROXY"])
def exchange(first: bytes, then: bytes = b""):
    s = socket.create_connection((proxy.hostname, proxy.port), timeout=20)
    s.sendall(first)
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    status, body = int(head.split()[1]), b""
    if status == 200 and then:
        s.sendall(then)
    if status == 200:
        while chunk := s.recv(65536):
            body += chunk
    return [status, body.decode(errors="replace")]
get = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
out["tunnel_local"] = exchange(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n".encode(), get)
out["tunnel_other"] = exchange(b"CONNECT blocked.example:443 HTTP/1.1\r\n\r\n", get)
out["http_local"] = exchange(f"GET http://127.0.0.1:{port}/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def host_server():
    class Hello(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            body = b"hello from the host"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def quick_run(results, tmp_path, *args):
    agent = script_agent(tmp_path, "quick", "exit 0\n")
    _, run = run_ptb(results, "run", "--model", "ptb-tiny", "--agent", "script", "--agent-config", str(agent),
                     "--minutes", "2", *args)  # fmt: skip
    return run


def net_probe(run, port):
    proc = ptb("shell", str(run), "--", sys.executable, "-c", NET_PROBE, str(port))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def egress_log(run):
    lines = (run / "agent/shell/egress.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_network_none_reaches_nothing_and_logs_every_attempt(results, tmp_path, host_server):
    run = quick_run(results, tmp_path, "--task", "arith", "--network", "none")
    out = net_probe(run, host_server)
    assert out["direct"] is False  # the host's loopback is another network namespace
    assert out["tunnel_local"][0] == 403 and out["tunnel_other"][0] == 403 and out["http_local"][0] == 403
    log = egress_log(run)
    assert [(e["method"], e["host"], e["allowed"], e["status"]) for e in log] == [
        ("CONNECT", "127.0.0.1", False, 403),
        ("CONNECT", "blocked.example", False, 403),
        ("GET", "127.0.0.1", False, 403),
    ]
    assert record(run)["solve"]["network"] == {"egress": {}}  # the agent itself tried nothing


def test_network_allowlist_reaches_only_allowed_hosts(results, tmp_path, host_server):
    run = quick_run(
        results, tmp_path, "--task", "arith", "--network", "allowlist", "--allow-host", "127.0.0.1"
    )
    assert record(run)["spec"]["allow_hosts"] == ["127.0.0.1"]
    out = net_probe(run, host_server)
    assert out["direct"] is False
    assert out["tunnel_local"][0] == 200 and out["tunnel_local"][1].endswith("hello from the host")
    assert out["http_local"][0] == 200 and out["http_local"][1].endswith("hello from the host")
    assert out["tunnel_other"][0] == 403
    log = {(e["method"], e["host"]): e for e in egress_log(run)}
    tunnel = log[("CONNECT", "127.0.0.1")]
    assert tunnel["allowed"] and tunnel["status"] == 200 and tunnel["port"] == host_server
    assert tunnel["bytes_up"] > 0 and tunnel["bytes_down"] > len("hello from the host")
    assert log[("CONNECT", "blocked.example")]["allowed"] is False


def test_allow_host_needs_the_allowlist_policy(results):
    proc = ptb("run", "--task", "arith", "--model", "ptb-tiny", "--agent", "noop", "--allow-host", "x.org",
               "--out", str(results))  # fmt: skip
    assert proc.returncode == 2 and "--allow-host only applies with --network allowlist" in proc.stderr


GRADER_PROBE = r"""
import json, os, openai
out = {"env": {k: v for k, v in os.environ.items() if k.startswith("PTB_GRADER")}}
def call(model, key=None, stream=False):
    client = openai.OpenAI(base_url=os.environ["PTB_GRADER_BASE_URL"],
                           api_key=key or os.environ["PTB_GRADER_API_KEY"], max_retries=0)
    try:
        r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}],
                                           stream=stream)
        if stream:
            return [200, "".join(c.choices[0].delta.content or "" for c in r if c.choices)]
        return [200, r.choices[0].message.content]
    except openai.APIStatusError as e:
        return [e.status_code, e.message]
out["other_model"] = call("gpt-4o")
out["wrong_key"] = call("grader-1", key="wrong-token")
out["allowed"] = call("grader-1")
out["streamed"] = call("grader-1", stream=True)
out["over_budget"] = call("grader-1")
print(json.dumps(out))
"""


def test_grader_proxy_serves_evaluate_py_and_refuses_the_rest(results, tmp_path, monkeypatch):
    with ScriptedJudge(lambda messages: "Both are fine. My final verdict is [[A=B]].") as judge:
        monkeypatch.setenv("JUDGE_BASE_URL", judge.url)
        monkeypatch.setenv("JUDGE_API_KEY", "judge-key-0123456789abcdef")
        monkeypatch.setenv("PTB_DATA_DIR", str(SHARED_DATA))
        run = quick_run(results, tmp_path, "--task", "arenahardwriting", "--network", "none",
                        "--judge-model", "openai-api/judge/grader-1", "--grader-tokens", "60", "--eval-limit", "1")  # fmt: skip
        model = models.snapshot(models.get("ptb-tiny"), settings.model_cache())
        # The agent-facing evaluate.py, unchanged, in the sandbox: 1 question, 2 games, 2 judge calls.
        evaluation = ptb("shell", str(run), "--", sys.executable, "evaluate.py", "--model-path", str(model),
                         "--limit", "1", "--max-tokens", "8", "--backend", "hf",
                         "--json-output-file", "/tmp/m.json", "--log-dir", "/tmp/logs")  # fmt: skip
        assert evaluation.returncode == 0, evaluation.stderr[-3000:]
        metrics = json.loads(evaluation.stdout[evaluation.stdout.index("{") :])
        assert metrics["judge_model"] == "openai-api/ptb-grader/grader-1"
        assert metrics["judge_calls"] == 2 and metrics["judge_failures"] == 0
        proc = ptb("shell", str(run), "--", sys.executable, "-c", GRADER_PROBE)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(out["env"]) == {"PTB_GRADER_API_KEY", "PTB_GRADER_BASE_URL", "PTB_GRADER_MODEL"}
    assert "judge-key-0123456789abcdef" not in json.dumps(out)
    assert out["other_model"][0] == 403 and "only the grader model grader-1" in out["other_model"][1]
    assert out["wrong_key"][0] == 401
    assert out["allowed"] == [200, "Both are fine. My final verdict is [[A=B]]."]
    assert out["streamed"] == [200, "Both are fine. My final verdict is [[A=B]]."]
    assert out["over_budget"][0] == 403 and "budget is spent (60/60" in out["over_budget"][1]
    # Upstream saw the real key: the run's baseline evaluation (1 question, 2 games, judged directly with
    # --judge-model) and then only the calls the proxy let through (2 + 2).
    assert judge.auth == ["Bearer judge-key-0123456789abcdef"] * 6
    base = json.loads((results / "baselines/arenahardwriting__ptb-tiny__judge-openai-api-judge-grader-1"
                                  "__limit-1/metrics.json").read_text())  # fmt: skip
    assert (base["judge_model"], base["n"], base["judge_calls"]) == ("openai-api/judge/grader-1", 1, 2)
    assert "smoke run: scored on the first 1 samples only" in record(run)["outcome"]["counted_reason"]
    calls = [json.loads(line) for line in (run / "agent/shell/grader.jsonl").read_text().splitlines()]
    assert [c["status"] for c in calls] == [200, 200, 403, 401, 200, 200, 403]
    assert [c["used_after"] for c in calls if c["status"] == 200] == [15, 30, 45, 60]
    assert all("content" not in json.dumps(c) for c in calls)  # metadata only, never the text
