"""Task data: a local data directory is used as is; otherwise the pinned files are downloaded (here
from a local HTTP mirror of the shared data, standing in for the upstream hosts) and every file is
checked against its pinned sha256."""

from __future__ import annotations

import functools
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import SHARED_DATA
from posttrainbench import tasks
from posttrainbench.errors import UserError


@pytest.fixture
def mirror(tmp_path):
    """An HTTP server over a copy of the shared data; yields (base URL, served dir, request log)."""
    root = tmp_path / "mirror"
    shutil.copytree(SHARED_DATA / "aime2025", root / "aime2025")
    shutil.copytree(SHARED_DATA / "bfcl", root / "bfcl")
    requests: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, format, *args):
            requests.append(self.path)

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root, requests
    server.shutdown()


def test_local_data_dir_is_read_in_place(monkeypatch, ptb_home):
    monkeypatch.setenv("PTB_DATA_DIR", str(SHARED_DATA))
    data = tasks.get("bfcl").data()
    assert data.record.source == "local"
    assert data.path("BFCL_v4_exec_simple.json") == SHARED_DATA / "bfcl" / "BFCL_v4_exec_simple.json"
    assert [f.path for f in data.record.files] == [
        "BFCL_v4_exec_simple.json",
        "possible_answer/BFCL_v4_exec_simple.json",
    ]


def test_download_verifies_and_caches(monkeypatch, tmp_path, mirror):
    url, _, requests = mirror
    monkeypatch.delenv("PTB_DATA_DIR", raising=False)
    monkeypatch.setenv("PTB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PTB_DATA_MIRROR", url)
    task = tasks.get("bfcl")
    data = task.data()
    assert data.record.source == "download"
    assert data.root == tmp_path / "home" / "data" / "bfcl"
    assert sorted(requests) == [
        "/bfcl/BFCL_v4_exec_simple.json",
        "/bfcl/possible_answer/BFCL_v4_exec_simple.json",
    ]
    assert len(task.samples(data)) == 100
    # Second use: nothing fetched again.
    task.data()
    assert len(requests) == 2


def test_download_of_a_different_file_is_refused(monkeypatch, tmp_path, mirror):
    url, root, _ = mirror
    (root / "aime2025" / "test.jsonl").write_text('{"answer": "1", "problem": "not AIME"}\n')
    monkeypatch.delenv("PTB_DATA_DIR", raising=False)
    monkeypatch.setenv("PTB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PTB_DATA_MIRROR", url)
    with pytest.raises(UserError, match="not the pinned"):
        tasks.get("aime2025").data()


def test_unreachable_source_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.delenv("PTB_DATA_DIR", raising=False)
    monkeypatch.setenv("PTB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PTB_DATA_MIRROR", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(UserError, match="--data-dir"):
        tasks.get("aime2025").data()
    assert not list((tmp_path / "home" / "data" / "aime2025").glob("*.part"))


def test_local_copy_that_differs_is_refused(monkeypatch, tmp_path):
    local = tmp_path / "data"
    shutil.copytree(SHARED_DATA / "aime2025", local / "aime2025")
    with (local / "aime2025" / "test.jsonl").open("a") as f:
        f.write('{"answer": "7", "problem": "an extra problem"}\n')
    with pytest.raises(UserError, match="not the pinned"):
        tasks.get("aime2025").data(local)
    with pytest.raises(UserError, match="missing"):
        tasks.get("gsm8k").data(local)


def test_every_task_pins_every_file():
    for task in tasks.all_tasks():
        for f in task.data_files:
            assert len(f.sha256) == 64 and f.url.startswith("https://"), (task.info.name, f.path)
            assert Path(f.path).parts[0] != "..", f.path


def test_agent_is_told_where_the_task_data_is(monkeypatch, tmp_path, mirror):
    from posttrainbench.lifecycle.session import task_data
    from posttrainbench.sandbox.plan import Mount

    monkeypatch.setenv("PTB_DATA_DIR", str(SHARED_DATA))
    root = str(SHARED_DATA)
    assert task_data("gpqamain") == (
        {"PTB_DATA_DIR": root},
        [Mount(kind="ro", source=root, target=root)],  # visible inside the sandbox, read-only
    )
    assert task_data("arith") == ({}, [])  # generated in the package, nothing to fetch
    # Without local data the files are fetched before the agent starts, so its evaluate.py works offline.
    url, _, requests = mirror
    monkeypatch.delenv("PTB_DATA_DIR")
    monkeypatch.setenv("PTB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PTB_DATA_MIRROR", url)
    env, _ = task_data("aime2025")
    assert env == {"PTB_DATA_DIR": str(tmp_path / "home" / "data")}
    assert requests and (tmp_path / "home" / "data" / "aime2025").is_dir()
