"""A raw HTTP server on 127.0.0.1 for the remote engine's tests, scripted byte by byte.

Unlike http.server it controls the framing exactly (chunked, `Connection: close` without a
length, HTTP/1.0 without a length, or a Content-Length), can stall at any point (until the
test ends or the client hangs up), and records each request (method, target, headers, JSON
body). It also serves as a plain-HTTP proxy: the target is then an absolute URL.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

STALL = "stall"  # a step: send nothing more until the client hangs up or the server closes


@dataclass
class Reply:
    status: int = 200
    steps: list[Any] = field(default_factory=list)  # bytes to send, a float to sleep, STALL
    framing: str = "chunked"  # chunked, close (HTTP/1.1 + Connection: close), http10, length
    content_type: str = "text/event-stream"
    stall_before_headers: bool = False


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: Any


def sse(delta: dict[str, Any] | None = None, finish: str | None = None,
        usage: dict[str, int] | None = None, model: str = "m") -> bytes:  # fmt: skip
    """One `data:` event of /v1/chat/completions."""
    obj: dict[str, Any] = {"id": "c1", "object": "chat.completion.chunk", "model": model,
                           "choices": []}  # fmt: skip
    if delta is not None or finish is not None:
        obj["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish}]
    if usage is not None:
        obj["usage"] = usage
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"


def models_reply(models: list[str]) -> Reply:
    body = json.dumps({"object": "list", "data": [{"id": m} for m in models]}).encode()
    return Reply(200, [body], "length", "application/json")


class WireServer:
    """`handler(request) -> Reply`; the default lists `models` and answers chat with `chat`."""

    def __init__(self, models: list[str] | None = None) -> None:
        self.models = models or ["m"]
        self.chat: Reply = Reply(200, [sse({"content": "Hi."}), sse(finish="stop"), DONE])
        self.handler: Callable[[Request], Reply] = self._default
        self.requests: list[Request] = []
        self._release = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _default(self, req: Request) -> Reply:
        if req.method == "GET" and req.target.endswith("/models"):
            return models_reply(self.models)
        return self.chat

    def close(self) -> None:
        self._release.set()
        self._sock.close()
        for c in self._conns:
            try:
                c.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn:
                req = self._read_request(conn)
                if req is None:
                    return
                self.requests.append(req)
                self._send(conn, self.handler(req))
        except OSError:
            pass

    def _read_request(self, conn: socket.socket) -> Request | None:
        data = b""
        while b"\r\n\r\n" not in data:
            got = conn.recv(65536)
            if not got:
                return None
            data += got
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])
        }
        length = int(headers.get("content-length", 0))
        while len(body) < length:
            body += conn.recv(65536)
        parsed = json.loads(body) if body else None
        return Request(method, target, headers, parsed)

    def _stall(self, conn: socket.socket) -> None:
        conn.settimeout(0.02)
        while not self._release.is_set():
            try:
                if conn.recv(1) == b"":
                    return  # the client hung up
            except TimeoutError:
                continue

    def _send(self, conn: socket.socket, reply: Reply) -> None:
        if reply.stall_before_headers:
            self._stall(conn)
            return
        version = "HTTP/1.0" if reply.framing == "http10" else "HTTP/1.1"
        head = [f"{version} {reply.status} X", f"Content-Type: {reply.content_type}"]
        if reply.framing == "chunked":
            head.append("Transfer-Encoding: chunked")
        elif reply.framing == "close":
            head.append("Connection: close")
        elif reply.framing == "length":
            total = sum(len(s) for s in reply.steps if isinstance(s, bytes))
            head.append(f"Content-Length: {total}")
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        for step in reply.steps:
            if step == STALL:
                self._stall(conn)
                return
            if isinstance(step, float | int):
                time.sleep(step)
                continue
            if reply.framing == "chunked":
                conn.sendall(f"{len(step):x}\r\n".encode() + step + b"\r\n")
            else:
                conn.sendall(step)
        if reply.framing == "chunked":
            conn.sendall(b"0\r\n\r\n")
