"""A local Hugging Face Hub for tests: generated repos served on 127.0.0.1 to the real client.

    with HubServer() as hub:
        hub.add_repo("org/model-GGUF", {"model.gguf": data, "config.json": b"{}"})
        hf_hub_download("org/model-GGUF", "model.gguf", endpoint=hub.url, cache_dir=...)

It answers what huggingface_hub asks for: resolve HEAD/GET (ETag, X-Repo-Commit, and for
LFS files a 302 to /cdn/<sha256> with X-Linked-Etag / X-Linked-Size), byte ranges (206 /
416), `GET /api/models/{repo}[/revision/{rev}]` (siblings; sizes and LFS hashes with
`?blobs=true`), `/api/models/{repo}/tree/{rev}` and `POST /api/models/{repo}/paths-info/{rev}`.
Knobs make it misbehave: `fail_next`, `cut_next`, `stall_next`, `rate`, `corrupt`, gated
and private repos with `tokens`. `bytes_sent` counts file bytes sent.

Hostile modes (a mirror that lies): any file name in `add_repo` (`../` included) is listed
as given; `add_repo(..., commit=...)` uses any string as the commit; `claim` makes the
listing, tree and paths-info (and the resolve headers) advertise a false sha256, blob id
or size; `header_lies` overrides resolve headers (X-Repo-Commit, X-Linked-Etag, ETag);
`half` sends only half of every body it promises ("ignore_range": always the file from
byte 0 with 200; "range": half of the requested range, 206) and then closes.

Fault modes: `substitute` serves other bytes of the same size under a file's real hash (a
server that sends wrong bytes); `stall_headers_next` accepts a file request and answers
nothing, not even headers; `cdn_location` sends LFS redirects elsewhere (a format string
with `{sha256}` and `{cdn}`, e.g. "https://evil.example/{sha256}").
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".gguf", ".safetensors", ".bin", ".pt", ".onnx")
SEND_CHUNK = 256 * 1024


@dataclass
class HubFile:
    """One file of a commit: content (bytes, or a Path for big files) and its hashes."""

    path: str
    source: bytes | Path
    size: int
    sha256: str
    blob_id: str
    lfs: bool
    claims: dict = field(default_factory=dict)  # what the metadata says instead (lies)

    def claimed(self, key: str) -> object:
        return self.claims.get(key, getattr(self, key))

    def read(self, start: int, end: int) -> bytes:
        if isinstance(self.source, bytes):
            return self.source[start:end]
        with open(self.source, "rb") as f:
            f.seek(start)
            return f.read(end - start)


@dataclass
class HubRepo:
    repo_id: str
    gated: bool = False
    private: bool = False
    commits: list[tuple[str, dict[str, HubFile]]] = field(default_factory=list)

    @property
    def sha(self) -> str:
        return self.commits[-1][0]

    def files_at(self, rev: str) -> dict[str, HubFile] | None:
        if rev == "main":
            return self.commits[-1][1]
        for sha, files in self.commits:
            if sha == rev:
                return files
        return None

    def sha_of(self, rev: str) -> str:
        return self.sha if rev == "main" else rev


@dataclass
class _Fault:
    kind: str  # "fail" | "cut" | "stall"
    where: str  # "api" | "resolve" | "cdn" | "any"
    status: int = 500
    error_code: str | None = None
    after: int = 0
    seconds: float = 0.0
    count: int = 1


def _hash_source(source: bytes | Path) -> tuple[int, str, str]:
    """Size, sha256 and git blob sha1 of the content."""
    if isinstance(source, bytes):
        git = hashlib.sha1(b"blob %d\0" % len(source))
        git.update(source)
        return len(source), hashlib.sha256(source).hexdigest(), git.hexdigest()
    size = source.stat().st_size
    sha256, git = hashlib.sha256(), hashlib.sha1(b"blob %d\0" % size)
    with open(source, "rb") as f:
        while chunk := f.read(8 << 20):
            sha256.update(chunk)
            git.update(chunk)
    return size, sha256.hexdigest(), git.hexdigest()


class HubServer:
    """A threaded HTTP server that behaves like the Hub for huggingface_hub downloads."""

    def __init__(self, lfs_min_size: int = 10 * 1024 * 1024) -> None:
        self.repos: dict[str, HubRepo] = {}
        self.blobs: dict[str, HubFile] = {}
        self.tokens: set[str] = set()
        self.lfs_min_size = lfs_min_size
        self.rate: float | None = None  # bytes per second per transfer, None = unlimited
        self.requests: list[tuple[str, str, str | None]] = []
        self.authorized: list[tuple[str, str]] = []  # (path, Authorization) when one was sent
        self.header_lies: dict[str, str] = {}  # resolve headers replaced by these values
        self.half: str | None = None  # None | "ignore_range" | "range"
        self.cdn_location: str | None = None  # where LFS redirects point instead of the CDN
        self._substitutes: dict[str, bytes] = {}
        self._corrupt: set[str] = set()
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._bytes_sent = 0
        self._streaming = 0  # file transfers still running (a paused client's may linger)
        self._closing = threading.Event()
        # The CDN listens on its own port: another origin, as on the real Hub, so the client
        # stops at the 302 for metadata and drops the Authorization header when following it.
        self._servers = [ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self)) for _ in "ab"]
        self._threads = []
        for httpd in self._servers:
            httpd.daemon_threads = True
            thread = threading.Thread(target=httpd.serve_forever, daemon=True)
            thread.start()
            self._threads.append(thread)

    # -- set-up -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._servers[0].server_address[:2]
        return f"http://{host}:{port}"

    @property
    def cdn_url(self) -> str:
        host, port = self._servers[1].server_address[:2]
        return f"http://{host}:{port}"

    def add_repo(
        self,
        repo_id: str,
        files: dict[str, bytes | Path],
        *,
        gated: bool = False,
        private: bool = False,
        lfs: set[str] | None = None,
        commit: str | None = None,
    ) -> str:
        """Add a repo (or a new commit to it) and return the commit sha (`commit` if given,
        whatever the string: a hostile mirror's "commit")."""
        built: dict[str, HubFile] = {}
        for path, source in files.items():
            size, sha256, blob_id = _hash_source(source)
            is_lfs = (
                path in lfs
                if lfs is not None
                else (path.endswith(LFS_SUFFIXES) or size >= self.lfs_min_size)
            )
            if is_lfs:
                pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\n"
                blob_id = hashlib.sha1(pointer.encode()).hexdigest()
            built[path] = HubFile(path, source, size, sha256, blob_id, is_lfs)
        with self._lock:
            repo = self.repos.setdefault(repo_id, HubRepo(repo_id))
            repo.gated, repo.private = gated, private
            seed = repo_id + "".join(f"{p}{f.sha256}" for p, f in sorted(built.items()))
            sha = commit or hashlib.sha1(f"{seed}{len(repo.commits)}".encode()).hexdigest()
            repo.commits.append((sha, built))
            for f in built.values():
                self.blobs[f.sha256] = f
        return sha

    def file(self, repo_id: str, path: str) -> HubFile:
        return self.repos[repo_id].commits[-1][1][path]

    # -- misbehaviour ------------------------------------------------------------------
    def fail_next(
        self, status: int = 500, count: int = 1, where: str = "any", error_code: str | None = None
    ) -> None:
        """Answer the next `count` matching requests with `status`."""
        with self._lock:
            self._faults.append(_Fault("fail", where, status, error_code, count=count))

    def cut_next(self, after: int, count: int = 1) -> None:
        """Drop the connection after `after` body bytes of the next `count` file transfers."""
        with self._lock:
            self._faults.append(_Fault("cut", "cdn", after=after, count=count))

    def stall_next(self, seconds: float, after: int = 0, count: int = 1) -> None:
        """Send nothing for `seconds` after `after` body bytes of the next file transfers."""
        with self._lock:
            self._faults.append(_Fault("stall", "cdn", after=after, seconds=seconds, count=count))

    def stall_headers_next(self, seconds: float, count: int = 1) -> None:
        """Answer nothing at all (no status line) for `seconds` on the next file requests."""
        with self._lock:
            self._faults.append(_Fault("stall_headers", "cdn", seconds=seconds, count=count))

    def substitute(self, repo_id: str, path: str, data: bytes | None = None) -> None:
        """Serve other bytes of the same size (default: the content reversed) while every
        listing and header keeps advertising the real hash."""
        f = self.file(repo_id, path)
        wrong = data if data is not None else f.read(0, f.size)[::-1]
        assert len(wrong) == f.size, "a substitute has the file's size"
        with self._lock:
            self._substitutes[f.sha256] = wrong

    def corrupt(self, repo_id: str, path: str) -> None:
        """Serve the file with one byte flipped (same size) while advertising its real hash."""
        self._corrupt.add(self.file(repo_id, path).sha256)

    def claim(self, repo_id: str, path: str, **claims: object) -> None:
        """Advertise false metadata for a file (sha256=, blob_id=, size=) in every listing
        and resolve header, while the CDN keeps serving the real bytes."""
        self.file(repo_id, path).claims.update(claims)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._corrupt.clear()
            self._substitutes.clear()
        self.rate = None
        self.half = None
        self.cdn_location = None
        self.header_lies.clear()

    @property
    def bytes_sent(self) -> int:
        with self._lock:
            return self._bytes_sent

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no file transfer is running, so later counts belong to later requests."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if not self._streaming:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError("the hub is still sending a file")
            time.sleep(0.01)

    def reset_counters(self) -> None:
        with self._lock:
            self._bytes_sent = 0
            self.requests.clear()

    # -- life cycle ----------------------------------------------------------------------
    def close(self) -> None:
        self._closing.set()
        for httpd, thread in zip(self._servers, self._threads, strict=True):
            httpd.shutdown()
            httpd.server_close()
            thread.join(timeout=5)

    def __enter__(self) -> HubServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- used by the handler -------------------------------------------------------------
    def _take_fault(self, kind: str, where: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind == kind and fault.where in (where, "any"):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _count(self, n: int) -> None:
        with self._lock:
            self._bytes_sent += n


def _make_handler(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    return type("BoundHubHandler", (_Handler,), {"hub": hub})


class _Handler(BaseHTTPRequestHandler):
    """Routes: resolve, cdn, api/models (info, tree, paths-info)."""

    protocol_version = "HTTP/1.1"
    hub: HubServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        pass

    # -- plumbing --------------------------------------------------------------------------
    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        error_code: str | None = None,
    ) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if error_code:
            self.send_header("X-Error-Code", error_code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: object) -> None:
        self._send(200, json.dumps(obj).encode(), {"Content-Type": "application/json"})

    def _fault(self, where: str) -> bool:
        fault = self.hub._take_fault("fail", where)
        if fault is None:
            return False
        self._send(fault.status, b'{"error": "injected"}', error_code=fault.error_code)
        return True

    def _access(self, repo_id: str) -> HubRepo | None:
        """The repo if this request may see it; otherwise answer like the Hub and None."""
        repo = self.hub.repos.get(repo_id)
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        if repo is None:
            self._send(404, b'{"error": "Repository not found"}', error_code="RepoNotFound")
            return None
        if (repo.gated or repo.private) and token not in self.hub.tokens:
            if repo.private:
                self._send(
                    401, b'{"error": "Invalid username or password."}', error_code="RepoNotFound"
                )
            else:
                status = 403 if token else 401
                self._send(
                    status,
                    b'{"error": "Access to this model is restricted."}',
                    error_code="GatedRepo",
                )
            return None
        return repo

    def _route(self) -> None:
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        self.hub.requests.append((self.command, url.path, self.headers.get("Range")))
        if self.headers.get("Authorization"):
            self.hub.authorized.append((url.path, self.headers["Authorization"]))
        if parts[0] == "cdn" and len(parts) == 2:
            if not self._fault("cdn"):
                self._cdn(parts[1])
        elif parts[:2] == ["api", "models"] and len(parts) >= 4:
            if not self._fault("api"):
                self._api("/".join(parts[2:4]), parts[4:], parse_qs(url.query))
        elif len(parts) >= 5 and parts[2] == "resolve":
            if not self._fault("resolve"):
                self._resolve("/".join(parts[:2]), parts[3], "/".join(parts[4:]))
        else:
            self._send(404, b"not found")

    do_GET = do_HEAD = do_POST = _route  # noqa: N815

    # -- endpoints -------------------------------------------------------------------------
    def _resolve(self, repo_id: str, rev: str, path: str) -> None:
        repo = self._access(repo_id)
        if repo is None:
            return
        files = repo.files_at(rev)
        if files is None:
            self._send(404, b"revision not found", error_code="RevisionNotFound")
            return
        f = files.get(path)
        commit = {"X-Repo-Commit": repo.sha_of(rev)}
        if f is None:
            self._send(404, b"entry not found", commit, error_code="EntryNotFound")
            return
        if f.lfs:
            sha = f.claimed("sha256")
            where = self.hub.cdn_location or "{cdn}/cdn/{sha256}"
            headers = {
                **commit,
                "Location": where.format(cdn=self.hub.cdn_url, sha256=f.sha256),
                "ETag": f'"{sha}"',
                "X-Linked-Etag": f'"{sha}"',
                "X-Linked-Size": str(f.claimed("size")),
            }
            self._send(302, b"", {**headers, **self.hub.header_lies})
        else:
            headers = {**commit, "ETag": f'"{f.claimed("blob_id")}"'}
            self._body(f, {**headers, **self.hub.header_lies})

    def _cdn(self, sha256: str) -> None:
        f = self.hub.blobs.get(sha256)
        if f is None:
            self._send(404, b"no such blob")
        else:
            self._body(f, {"ETag": f'"{sha256}"'}, cdn=True)

    def _body(self, f: HubFile, headers: dict[str, str], cdn: bool = False) -> None:
        silent = self.hub._take_fault("stall_headers", "cdn") if self.command != "HEAD" else None
        if silent is not None:
            self.hub._closing.wait(silent.seconds)
        start, end, status = 0, f.size, 200
        rng = self.headers.get("Range")
        if rng and self.hub.half == "ignore_range" and self.command != "HEAD":
            rng = None  # a hostile server: the whole file again, every time
        if rng and rng.startswith("bytes="):
            first, _, last = rng[6:].partition("-")
            start = int(first or 0)
            end = min(f.size, int(last) + 1) if last else f.size
            if start >= f.size:
                self._send(416, b"", {"Content-Range": f"bytes */{f.size}"})
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{f.size}"
        self.send_response(status)
        for k, v in {**headers, "Accept-Ranges": "bytes"}.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        if self.command == "HEAD":
            return
        cut = self.hub._take_fault("cut", "cdn") if cdn else None
        if self.hub.half:  # promise the whole range, send half of it, hang up
            cut = _Fault("cut", "cdn", after=(end - start) // 2)
        stall = self.hub._take_fault("stall", "cdn") if cdn else None
        flip = f.sha256 in self.hub._corrupt
        self._stream(f, start, end, cut, stall, flip)

    def _stream(
        self, f: HubFile, start: int, end: int, cut: _Fault | None, stall: _Fault | None, flip: bool
    ) -> None:
        sent, t0 = 0, time.monotonic()
        pos = start
        with self.hub._lock:
            self.hub._streaming += 1
        try:
            while pos < end:
                n = min(SEND_CHUNK, end - pos)
                if cut is not None:
                    n = min(n, cut.after - sent)
                    if n <= 0:
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                if stall is not None and sent >= stall.after:
                    self.hub._closing.wait(stall.seconds)
                    stall = None
                elif stall is not None:
                    n = min(n, stall.after - sent)
                data = self.hub._substitutes.get(f.sha256, b"")[pos : pos + n] or f.read(
                    pos, pos + n
                )
                if flip and pos <= f.size // 2 < pos + n:
                    i = f.size // 2 - pos
                    data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]
                self.wfile.write(data)
                self.hub._count(n)
                sent += n
                pos += n
                if self.hub.rate:
                    delay = sent / self.hub.rate - (time.monotonic() - t0)
                    if delay > 0 and self.hub._closing.wait(delay):
                        return
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
        finally:
            with self.hub._lock:
                self.hub._streaming -= 1

    def _api(self, repo_id: str, rest: list[str], query: dict[str, list[str]]) -> None:
        repo = self._access(repo_id)
        if repo is None:
            return
        rev = "main"
        if rest[:1] in (["revision"], ["tree"], ["paths-info"]) and len(rest) >= 2:
            rev = rest[1]
        files = repo.files_at(rev)
        if files is None:
            self._send(404, b"revision not found", error_code="RevisionNotFound")
        elif not rest or rest[0] == "revision":
            blobs = query.get("blobs", ["false"])[0].lower() == "true"
            self._json(
                {
                    "_id": repo_id,
                    "id": repo_id,
                    "modelId": repo_id,
                    "sha": repo.sha_of(rev),
                    "private": repo.private,
                    "gated": "auto" if repo.gated else False,
                    "siblings": [_sibling(f, blobs) for f in files.values()],
                }
            )
        elif rest[0] == "tree":
            prefix = "/".join(rest[2:])
            self._json([_entry(f) for p, f in sorted(files.items()) if p.startswith(prefix)])
        elif rest[0] == "paths-info" and self.command == "POST":
            length = int(self.headers.get("Content-Length", 0))
            form = parse_qs(self.rfile.read(length).decode())
            wanted = form.get("paths", [])
            self._json([_entry(files[p]) for p in wanted if p in files])
        else:
            self._send(404, b"not found")


def _sibling(f: HubFile, blobs: bool) -> dict:
    if not blobs:
        return {"rfilename": f.path}
    size = f.claimed("size")
    out: dict = {"rfilename": f.path, "size": size, "blobId": f.claimed("blob_id")}
    if f.lfs:
        out["lfs"] = {"size": size, "sha256": f.claimed("sha256"), "pointerSize": 134}
    return out


def _entry(f: HubFile) -> dict:
    size = f.claimed("size")
    out: dict = {"type": "file", "oid": f.claimed("blob_id"), "size": size, "path": f.path}
    if f.lfs:
        out["lfs"] = {"oid": f.claimed("sha256"), "size": size, "pointerSize": 134}
    return out
