"""A local stand-in for the Hugging Face Hub HTTP API (tests only).

It serves just what ``huggingface_hub`` (create_repo, upload_folder / create_commit, snapshot_download,
hf_hub_download, HfFileSystem) and ``datasets`` (push_to_hub, load_dataset) call, so the real client
code runs end to end against 127.0.0.1. Files whose name ends in an LFS suffix go through the LFS
batch API (as parquet shards do on the Hub: ``datasets`` deletes its temporary shard right after the
pre-upload, so a shard committed as a regular base64 file could not be read any more); everything
else is committed inline. Xet is never offered: no response carries Xet headers or hashes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".parquet", ".safetensors", ".npz", ".bin")
REPO = r"(?P<repo>[^/]+/[^/]+)"
TYPES = r"(?P<type>models|datasets)"


@dataclass(frozen=True)
class StoredFile:
    content: bytes
    lfs: bool

    @property
    def git_oid(self) -> str:
        return hashlib.sha1(b"blob %d\0" % len(self.content) + self.content).hexdigest()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.git_oid


@dataclass
class StubRepo:
    private: bool
    commits: dict[str, dict[str, StoredFile]] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)  # commit summaries, oldest first
    head: str = ""

    @property
    def latest(self) -> dict[str, StoredFile]:
        return self.commits[self.head]

    def files(self, revision: str) -> tuple[str, dict[str, StoredFile]] | None:
        sha = self.head if revision == "main" else revision
        return (sha, self.commits[sha]) if sha in self.commits else None


class HubStub:
    """In-memory repos served over HTTP on a free port; ``endpoint`` is its base URL."""

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], StubRepo] = {}  # (models|datasets, repo id) -> repo
        self.lfs_objects: dict[str, bytes] = {}
        self.requests: list[str] = []
        self.authorizations: set[str] = set()  # Authorization headers seen on writes
        self.unhandled: list[str] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.stub = self  # type: ignore[attr-defined]
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HubStub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------------ state
    def create(self, kind: str, repo_id: str, private: bool) -> bool:
        """Create a repo with the Hub's initial commit (a ``.gitattributes``); False if it exists."""
        with self.lock:
            if (kind, repo_id) in self.repos:
                return False
            repo = StubRepo(private)
            attributes = "".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n" for s in LFS_SUFFIXES).encode()
            self._add_commit(repo, {".gitattributes": StoredFile(attributes, False)}, "initial commit")
            self.repos[(kind, repo_id)] = repo
            return True

    def _add_commit(self, repo: StubRepo, files: dict[str, StoredFile], summary: str) -> str:
        sha = hashlib.sha1(f"{len(repo.commits)}:{repo.head}:{summary}:{sorted(files)}".encode()).hexdigest()
        repo.commits[sha] = files
        repo.messages.append(summary)
        repo.head = sha
        return sha

    def commit(self, kind: str, repo_id: str, revision: str, lines: list[dict]) -> tuple[int, dict]:
        with self.lock:
            repo = self.repos.get((kind, repo_id))
            if repo is None:
                return 404, {"error": "Repository not found"}
            if revision != "main":
                return 400, {"error": "the stub commits to main only"}
            header = lines[0]["value"]
            if header.get("parentCommit") not in (None, repo.head):
                return 412, {"error": "parent commit is not the head of main"}
            files = dict(repo.commits[repo.head])
            for line in lines[1:]:
                key, value = line["key"], line["value"]
                path = value["path"]
                if key == "file":
                    files[path] = StoredFile(base64.b64decode(value["content"]), False)
                elif key == "lfsFile":
                    if value["oid"] not in self.lfs_objects:
                        return 422, {"error": f"LFS object {value['oid']} was never uploaded"}
                    files[path] = StoredFile(self.lfs_objects[value["oid"]], True)
                elif key == "deletedFile":
                    files.pop(path, None)
                elif key == "deletedFolder":
                    files = {p: f for p, f in files.items() if not p.startswith(path.rstrip("/") + "/")}
                else:
                    return 400, {"error": f"the stub does not handle {key!r} commit lines"}
            sha = self._add_commit(repo, files, header["summary"])
            prefix = "datasets/" if kind == "datasets" else ""
            return 200, {"commitUrl": f"{self.endpoint}/{prefix}{repo_id}/commit/{sha}", "commitOid": sha, "pullRequestUrl": None}


def _tree_entries(files: dict[str, StoredFile], under: str, recursive: bool) -> list[dict]:
    """Files and folders below ``under`` (immediate children unless ``recursive``), Hub-style."""
    prefix = under.strip("/") + "/" if under.strip("/") else ""
    entries: dict[str, dict] = {}
    for path, f in sorted(files.items()):
        if not path.startswith(prefix):
            continue
        parts = path[len(prefix) :].split("/")
        for depth in range(1, len(parts)):  # the folders on the way
            folder = prefix + "/".join(parts[:depth])
            if recursive or depth == 1:
                entries.setdefault(folder, {"type": "directory", "oid": hashlib.sha1(folder.encode()).hexdigest(), "path": folder})
        if recursive or len(parts) == 1:
            entries[path] = _file_entry(path, f)
    return list(entries.values())


def _file_entry(path: str, f: StoredFile) -> dict:
    entry: dict = {"type": "file", "oid": f.git_oid, "size": len(f.content), "path": path}
    if f.lfs:
        entry["lfs"] = {"oid": f.sha256, "size": len(f.content), "pointerSize": 134}
    return entry


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    @property
    def stub(self) -> HubStub:
        return self.server.stub  # type: ignore[attr-defined]

    def log_message(self, format, *args) -> None:  # noqa: A002 - BaseHTTPRequestHandler's signature
        pass  # requests are recorded in stub.requests instead of stderr

    # ------------------------------------------------------------------ plumbing
    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                chunk = self.rfile.read(size)
                self.rfile.readline()
                if size == 0:
                    return out
                out += chunk
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        headers = {"Content-Type": "application/json", **(headers or {})}
        headers.setdefault("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer has headers only, or the connection's next answer breaks
            self.wfile.write(body)

    def _json(self, status: int, obj, error_code: str | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), {"X-Error-Code": error_code} if error_code else None)

    def _not_found(self, what: str = "RepoNotFound") -> None:
        self._json(404, {"error": what}, what)

    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        self.stub.requests.append(f"{method} {path}")
        body = self._body() if method in ("POST", "PUT") else b""
        if method in ("POST", "PUT") and "authorization" in self.headers:
            self.stub.authorizations.add(self.headers["authorization"])
        for pattern, verb, handler in ROUTES:
            m = re.fullmatch(pattern, path)
            if m and verb == method.replace("HEAD", "GET"):
                groups = {k: unquote(v) if v is not None else None for k, v in m.groupdict().items()}
                return handler(self, body=body, query=query, **groups)
        self.stub.unhandled.append(f"{method} {path}")
        self._json(404, {"error": f"stub: no route for {method} {path}"})

    def do_GET(self) -> None:
        self._route("GET")

    def do_HEAD(self) -> None:
        self._route("HEAD")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    def _repo(self, type: str, repo: str) -> StubRepo | None:  # noqa: A002 - route group name
        return self.stub.repos.get((type, repo))

    # ------------------------------------------------------------------ endpoints
    def create_repo(self, body: bytes, **_) -> None:
        payload = json.loads(body)
        kind = payload.get("type", "model") + "s"
        repo_id = f"{payload.get('organization') or 'stub-user'}/{payload['name']}"
        prefix = "datasets/" if kind == "datasets" else ""
        url = f"{self.stub.endpoint}/{prefix}{repo_id}"
        if self.stub.create(kind, repo_id, payload.get("visibility") == "private"):
            self._json(200, {"url": url, "name": repo_id})
        else:
            self._json(409, {"error": "You already created this repo", "url": url})

    def validate_yaml(self, **_) -> None:
        self._json(200, {"errors": [], "warnings": []})

    def repo_info(self, type: str, repo: str, revision: str | None, **_) -> None:  # noqa: A002
        stored = self._repo(type, repo)
        if stored is None:
            return self._not_found()
        resolved = stored.files(revision or "main")
        if resolved is None:
            return self._not_found("RevisionNotFound")
        sha, files = resolved
        self._json(200, {"id": repo, "sha": sha, "private": stored.private, "siblings": [{"rfilename": p} for p in sorted(files)], "tags": []})

    def preupload(self, type: str, repo: str, body: bytes, **_) -> None:  # noqa: A002
        if self._repo(type, repo) is None:
            return self._not_found()
        files = json.loads(body)["files"]
        modes = [{"path": f["path"], "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES) else "regular", "shouldIgnore": False} for f in files]
        self._json(200, {"files": modes})

    def lfs_batch(self, repo: str, body: bytes, **_) -> None:
        objects = json.loads(body)["objects"]
        out = [{"oid": o["oid"], "size": o["size"], "actions": {"upload": {"href": f"{self.stub.endpoint}/stub-lfs/{o['oid']}"}}} for o in objects]
        self._json(200, {"transfer": "basic", "objects": out})

    def lfs_upload(self, oid: str, body: bytes, **_) -> None:
        if hashlib.sha256(body).hexdigest() != oid:
            return self._json(400, {"error": "sha256 mismatch"})
        with self.stub.lock:
            self.stub.lfs_objects[oid] = body
        self._send(200)

    def commit(self, type: str, repo: str, revision: str, body: bytes, **_) -> None:  # noqa: A002
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        status, payload = self.stub.commit(type, repo, revision, lines)
        self._json(status, payload, "RepoNotFound" if status == 404 else None)

    def tree(self, type: str, repo: str, revision: str, subpath: str | None, query: dict, **_) -> None:  # noqa: A002
        stored = self._repo(type, repo)
        resolved = stored.files(revision) if stored else None
        if resolved is None:
            return self._not_found("RepoNotFound" if stored is None else "RevisionNotFound")
        files = resolved[1]
        under = subpath or ""
        if under and under not in files and not any(p.startswith(under.rstrip("/") + "/") for p in files):
            return self._not_found("EntryNotFound")
        recursive = query.get("recursive", ["False"])[0].lower() == "true"
        self._json(200, _tree_entries(files, under, recursive))

    def paths_info(self, type: str, repo: str, revision: str, body: bytes, **_) -> None:  # noqa: A002
        stored = self._repo(type, repo)
        resolved = stored.files(revision) if stored else None
        if resolved is None:
            return self._not_found()
        files = resolved[1]
        out = []
        for p in parse_qs(body.decode()).get("paths", []):
            p = p.strip("/")
            if p in files:
                out.append(_file_entry(p, files[p]))
            elif any(f.startswith(p + "/") for f in files):
                out.append({"type": "directory", "oid": hashlib.sha1(p.encode()).hexdigest(), "path": p})
        self._json(200, out)

    def resolve(self, datasets: str | None, repo: str, revision: str, file: str, **_) -> None:
        stored = self._repo("datasets" if datasets else "models", repo)
        resolved = stored.files(revision) if stored else None
        if resolved is None:
            return self._json(404, {"error": "not found"}, "RepoNotFound" if stored is None else "RevisionNotFound")
        sha, files = resolved
        if file not in files:
            return self._json(404, {"error": "Entry not found"}, "EntryNotFound")
        f = files[file]
        headers = {"Content-Type": "application/octet-stream", "ETag": f'"{f.etag}"', "X-Repo-Commit": sha, "Accept-Ranges": "bytes"}
        content, status = f.content, 200
        byte_range = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if byte_range and self.command == "GET":
            start = int(byte_range.group(1))
            end = int(byte_range.group(2)) if byte_range.group(2) else len(content) - 1
            if start >= len(content):
                return self._send(416, b"", {"Content-Range": f"bytes */{len(content)}"})
            headers["Content-Range"] = f"bytes {start}-{min(end, len(content) - 1)}/{len(content)}"
            content, status = content[start : end + 1], 206
        headers["Content-Length"] = str(len(content))
        self._send(status, content, headers)


ROUTES = [
    (r"/api/repos/create", "POST", _Handler.create_repo),
    (r"/api/validate-yaml", "POST", _Handler.validate_yaml),
    (rf"/api/{TYPES}/{REPO}/preupload/(?P<revision>[^/]+)", "POST", _Handler.preupload),
    (rf"/api/{TYPES}/{REPO}/commit/(?P<revision>[^/]+)", "POST", _Handler.commit),
    (rf"/api/{TYPES}/{REPO}/tree/(?P<revision>[^/]+)(?:/(?P<subpath>.+))?", "GET", _Handler.tree),
    (rf"/api/{TYPES}/{REPO}/paths-info/(?P<revision>[^/]+)", "POST", _Handler.paths_info),
    (rf"/api/{TYPES}/{REPO}(?:/revision/(?P<revision>[^/]+))?", "GET", _Handler.repo_info),
    (rf"/(?:datasets/)?{REPO}\.git/info/lfs/objects/batch", "POST", _Handler.lfs_batch),
    (r"/stub-lfs/(?P<oid>[0-9a-f]{64})", "PUT", _Handler.lfs_upload),
    (rf"/(?P<datasets>datasets/)?{REPO}/resolve/(?P<revision>[^/]+)/(?P<file>.+)", "GET", _Handler.resolve),
]
