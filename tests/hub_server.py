"""A local stand-in for the Hugging Face Hub, speaking enough of its HTTP file protocol for
huggingface_hub's real download code (point `HF_ENDPOINT` at it):

- `GET /api/{models,datasets}/{repo}/revision/{rev}`: the repo's commit (`sha`) and files (`siblings`);
- `GET /api/{models,datasets}/{repo}/tree/{rev}`: the file listing, with `lfs.oid` (sha256) for LFS files;
- `HEAD|GET /{repo}/resolve/{rev}/{path}` (`/datasets/{repo}/resolve/...` for datasets): the file, with
  `ETag` (the git blob sha1, or the sha256 for LFS files, quoted), `X-Repo-Commit`, `X-Linked-Etag` and
  `X-Linked-Size` for LFS files, and `Range` requests answered 206;
- `GET /mirror/{path}`: plain files (`static`), for the task data's `PTB_DATA_MIRROR`.

Repos are built in memory from bytes. Knobs: `interrupt` cuts a file's next download after N bytes and
then answers 503 once (a dropped connection to a host that stays down for the retry); `corrupt` serves
other bytes (same length) for a file while its metadata keeps the true hashes.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

REPO_TYPES = {"models": "model", "datasets": "dataset"}


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    files: dict[str, bytes]
    lfs: frozenset[str]  # the paths stored in LFS

    @property
    def commit(self) -> str:
        digest = hashlib.sha1()
        for path in sorted(self.files):
            digest.update(path.encode() + b"\0" + hashlib.sha256(self.files[path]).digest())
        return digest.hexdigest()

    def etag(self, path: str) -> str:
        data = self.files[path]
        return hashlib.sha256(data).hexdigest() if path in self.lfs else git_blob_sha1(data)

    def tree_entry(self, path: str) -> dict:
        data = self.files[path]
        entry = {"type": "file", "path": path, "size": len(data), "oid": git_blob_sha1(data)}
        if path in self.lfs:
            sha256 = hashlib.sha256(data).hexdigest()
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {len(data)}\n"
            entry["oid"] = git_blob_sha1(pointer.encode())
            entry["lfs"] = {"oid": sha256, "size": len(data), "pointerSize": len(pointer)}
        return entry


@dataclass
class Request:
    method: str
    path: str
    range: str | None


@dataclass
class HubServer:
    repos: dict[tuple[str, str], Repo] = field(default_factory=dict)  # (repo type, repo id) -> repo
    static: dict[str, bytes] = field(default_factory=dict)  # /mirror/<path> -> bytes
    requests: list[Request] = field(default_factory=list)
    interrupts: dict[tuple[str, str], int] = field(default_factory=dict)  # (repo id, path) -> bytes
    down: set[tuple[str, str]] = field(default_factory=set)
    corrupted: set[tuple[str, str]] = field(default_factory=set)
    url: str = ""

    def add(self, repo_id: str, files: dict[str, bytes], lfs: set[str], repo_type: str = "model") -> Repo:
        repo = Repo(files, frozenset(lfs))
        self.repos[repo_type, repo_id] = repo
        return repo

    def interrupt(self, repo_id: str, path: str, after: int) -> None:
        self.interrupts[repo_id, path] = after

    def corrupt(self, repo_id: str, path: str) -> None:
        self.corrupted.add((repo_id, path))

    def __enter__(self) -> HubServer:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


API = re.compile(r"^/api/(models|datasets)/([^/]+/[^/]+)/(revision|tree)/([^/]+)(?:/.*)?$")
RESOLVE = re.compile(r"^/(?:(datasets)/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")


def _handler(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args) -> None:
            pass

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def do_GET(self) -> None:
            self._serve(body=True)

        def _serve(self, body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            with lock:
                hub.requests.append(Request(self.command, path, self.headers.get("Range")))
            if path.startswith("/mirror/") and path[len("/mirror/") :] in hub.static:
                return self._send(200, hub.static[path[len("/mirror/") :]], {}, body)
            if m := API.match(path):
                return self._api(REPO_TYPES[m[1]], m[2], m[3], m[4])
            if m := RESOLVE.match(path):
                return self._resolve("dataset" if m[1] else "model", m[2], m[3], m[4], body)
            self._send(404, b"not found", {"X-Error-Code": "EntryNotFound"}, body)

        def _repo(self, repo_type: str, repo_id: str, revision: str, body: bool = True) -> Repo | None:
            repo = hub.repos.get((repo_type, repo_id))
            if repo is None:
                self._send(404, b"repository not found", {"X-Error-Code": "RepoNotFound"}, body)
            elif revision not in ("main", repo.commit):
                self._send(404, b"revision not found", {"X-Error-Code": "RevisionNotFound"}, body)
            else:
                return repo
            return None

        def _api(self, repo_type: str, repo_id: str, endpoint: str, revision: str) -> None:
            if (repo := self._repo(repo_type, repo_id, revision)) is None:
                return
            if endpoint == "revision":
                info = {
                    "id": repo_id,
                    "sha": repo.commit,
                    "private": False,
                    "siblings": [{"rfilename": p} for p in sorted(repo.files)],
                }
            else:
                info = [repo.tree_entry(p) for p in sorted(repo.files)]
            self._send(200, json.dumps(info).encode(), {"Content-Type": "application/json"}, True)

        def _resolve(self, repo_type: str, repo_id: str, revision: str, file: str, body: bool) -> None:
            if (repo := self._repo(repo_type, repo_id, revision, body)) is None:
                return
            if file not in repo.files:
                self._send(404, b"entry not found", {"X-Error-Code": "EntryNotFound"}, body)
                return
            key = (repo_id, file)
            if body and key in hub.down:
                hub.down.discard(key)
                self._send(503, b"unavailable", {}, body)
                return
            data, etag = repo.files[file], repo.etag(file)
            headers = {"ETag": f'"{etag}"', "X-Repo-Commit": repo.commit, "Accept-Ranges": "bytes"}
            if file in repo.lfs:
                headers |= {"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(len(data))}
            if body and key in hub.corrupted:
                data = bytes(b ^ 0xFF for b in data)
            status, start = 200, 0
            if body and (m := re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")):
                start, end = int(m[1]), int(m[2]) if m[2] else len(data) - 1
                headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                status, data = 206, data[start : end + 1]
            cut = hub.interrupts.pop(key, None) if body else None
            if cut is None:
                self._send(status, data, headers, body)
                return
            hub.down.add(key)
            self._send(status, data, headers, body, cut=cut)

        def _send(
            self, status: int, data: bytes, headers: dict[str, str], body: bool, cut: int | None = None
        ) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                self.wfile.write(data if cut is None else data[:cut])
                self.wfile.flush()
            if cut is not None:
                self.close_connection = True

    return Handler
