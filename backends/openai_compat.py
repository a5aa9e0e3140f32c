"""The remote engine: a server that speaks the OpenAI chat API (vLLM, SGLang, llama-server, Ollama).

Runs inside the engine process like the local engines, but generates nothing itself: it
streams `/v1/chat/completions` (server-sent events) or Ollama's native `/api/chat` (JSON
lines) over the standard library's http.client. Reasoning that a server sends as its own
field (`reasoning_content`, `reasoning`, Ollama's `thinking`) is wrapped in
`<think>…</think>`, so the client's one splitter handles every server; plain `<think>` text
in `content` passes through. Cancel closes the socket at once. HTTP and network failures
become EngineFailure with words a person can act on. TLS certificates are verified unless
the user turns that off for a server. The API key arrives in the `load` command, lives only
in memory, and is never logged or echoed in a message.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from typing import Any

from backends.base import Emit, EngineFailure, GenerationControl
from backends.generation import EmitParts, parse_request
from backends.remote_http import (
    CONNECT_TIMEOUT_S,
    MAX_ERROR_BODY,
    PREOPEN_NAMES,
    READ_TIMEOUT_S,
    Endpoint,
    fetch_models,
    http_failure,
    network_failure,
    safe_url,
)
from backends.remote_stream import Framer, parse_ollama_line, parse_openai_chunk, sse_events
from backends.think_tags import TAG_STYLES
from backends.util import process_rss


class OpenAICompatEngine:
    """A model on a remote server; `load` checks the server, `generate` streams from it."""

    name = "openai"

    def __init__(self) -> None:
        self.info: dict[str, Any] = {}
        self.endpoint: Endpoint | None = None
        self.model = ""
        self.assume_open = False
        self.include_usage = True

    def load(self, path: str, **opts: Any) -> dict[str, Any]:
        """`path` is the base URL; opts: model, api_key, api, verify_tls, ca_file, timeouts,
        thinking_open (True/False, or None to guess from the model name)."""
        t0 = time.perf_counter()
        ep = Endpoint(
            path,
            opts.get("api_key") or None,
            str(opts.get("api") or "openai"),
            bool(opts.get("verify_tls", True)),
            opts.get("ca_file") or None,
            float(opts.get("connect_timeout_s") or CONNECT_TIMEOUT_S),
            float(opts.get("read_timeout_s") or READ_TIMEOUT_S),
        )
        models = fetch_models(ep, during_load=True)
        model = str(opts.get("model") or "")
        if not model and len(models) == 1:
            model = models[0]
        if not model:
            raise EngineFailure("bad_request", "Choose which of the server's models to use: "
                                f"{', '.join(models[:20]) or 'it lists none'}.")  # fmt: skip
        if model not in models:
            raise http_failure(404, b'{"error": "model not found"}', ep, True, model, models)
        self.endpoint, self.model = ep, model
        open_opt = opts.get("thinking_open")
        self.assume_open = bool(PREOPEN_NAMES.search(model)) if open_opt is None else bool(open_opt)
        self.info = {
            "path": safe_url(path),
            "engine": self.name,
            "remote": True,
            "api": ep.api,
            "name": model,
            "model": model,
            "server_models": models[:50],
            "n_ctx": opts.get("n_ctx") or None,
            "context_length": None,
            "chat_template": True,
            "thinking_open_guess": self.assume_open,
            "tls_verified": ep.verify_tls if ep.base_url.startswith("https") else None,
            "load_seconds": round(time.perf_counter() - t0, 3),
            "rss_bytes": process_rss(),
        }
        return self.info

    def unload(self) -> None:
        self.info = {}
        self.endpoint = None

    def _body(self, cmd: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        req = parse_request(cmd)
        messages = [_without_thinking(m) for m in req.messages]
        ep = self.endpoint
        assert ep is not None
        if ep.api == "ollama":
            options: dict[str, Any] = {"temperature": req.temperature, "top_p": req.top_p}
            if req.max_tokens is not None:
                options["num_predict"] = req.max_tokens
            if req.seed is not None:
                options["seed"] = req.seed
            return ep.path("/api/chat"), {
                "model": self.model,
                "messages": messages,
                "stream": True,
                "think": True,
                "options": options,
            }
        body: dict[str, Any] = {"model": self.model, "messages": messages, "stream": True,
                                "temperature": req.temperature, "top_p": req.top_p}  # fmt: skip
        if req.max_tokens is not None:  # else the server's own limit: the rest of its context
            body["max_tokens"] = req.max_tokens
        if req.seed is not None:
            body["seed"] = req.seed
        if self.include_usage:
            body["stream_options"] = {"include_usage": True}
        return ep.path("/chat/completions"), body

    def generate(self, cmd: dict[str, Any], control: GenerationControl, emit: Emit,
                 emit_parts: EmitParts) -> dict[str, Any]:  # fmt: skip
        if self.endpoint is None:
            raise EngineFailure("bad_request", "No server model is loaded: connect first.")
        ep = self.endpoint
        request_id = str(cmd.get("id"))
        path, body = self._body(cmd)

        def started(thinking_open: bool) -> None:
            emit({"event": "started", "id": request_id, "prompt_tokens": 0,
                  "thinking_open": thinking_open, "think_start": "<think>",
                  "think_end": "</think>"})  # fmt: skip

        framer = Framer(self.assume_open, started, emit_parts)
        conn = ep.connect()
        closed = threading.Event()
        watcher = threading.Thread(target=_close_on_cancel, args=(conn, control, closed),
                                   name="cancel-watch", daemon=True)  # fmt: skip
        stop, usage = "eos", None
        try:
            try:
                conn.connect()
                conn.sock.settimeout(ep.read_timeout_s)
                conn.request("POST", path, body=json.dumps(body).encode(),
                             headers=ep.headers(streaming=True))  # fmt: skip
                watcher.start()
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException, AttributeError) as exc:
                if control.cancelled:
                    framer.finish()
                    return framer.answer.done_stats(0, "cancelled", remote=True)
                raise network_failure(exc, ep, "internal", ep.read_timeout_s) from None
            if resp.status != 200:
                data = resp.read(MAX_ERROR_BODY)
                if resp.status in (400, 422) and self.include_usage and b"stream_options" in data:
                    self.include_usage = False  # an older server: ask once more without it
                    conn.close()
                    return self.generate(cmd, control, emit, emit_parts)
                models = None
                if resp.status == 404 and b"model" in data.lower():
                    models = _models_or_none(ep)
                raise http_failure(resp.status, data, ep, False, self.model, models,
                                   resp.getheader("Retry-After"))  # fmt: skip
            stop, usage = self._read_stream(resp, framer, control, ep)
        finally:
            closed.set()
            conn.close()
        framer.finish()
        prompt_tokens = 0
        answer = framer.answer
        if usage:  # the server's exact count replaces the count of pieces
            answer.produced = int(usage.get("completion_tokens") or answer.produced)
            prompt_tokens = int(usage.get("prompt_tokens") or 0)
        return answer.done_stats(prompt_tokens, stop, remote=True)

    def _read_stream(
        self,
        resp: http.client.HTTPResponse,
        framer: Framer,
        control: GenerationControl,
        ep: Endpoint,
    ) -> tuple[str, dict | None]:
        stop, usage, finished = "eos", None, False
        lines = iter(resp.readline, b"")
        pieces = (
            (parse_ollama_line(x) for x in lines if x.strip())
            if ep.api == "ollama"
            else (parse_openai_chunk(p) for p in sse_events(lines))
        )
        try:
            for piece in pieces:
                if control.cancelled:
                    return "cancelled", usage
                if piece.error:
                    raise EngineFailure("internal", f"The server stopped the answer with an "
                                        f"error: {piece.error}", piece.error)  # fmt: skip
                framer.feed(piece)
                if piece.usage:
                    usage = piece.usage
                if piece.finish:
                    stop = "length" if piece.finish == "length" else "eos"
                    finished = True
                if piece.done:
                    return stop, usage
        except (OSError, http.client.HTTPException, ValueError, AttributeError) as exc:
            if control.cancelled:
                return "cancelled", usage
            if isinstance(exc, TimeoutError | socket.timeout):
                raise EngineFailure(
                    "internal",
                    f"The server at {ep.where} sent nothing for {ep.read_timeout_s:.0f} s and "
                    "the answer was stopped: it may be overloaded.",
                    f"{type(exc).__name__}: {exc}",
                ) from None
            raise _dropped(ep, framer, exc) from None
        if control.cancelled:
            return "cancelled", usage
        if not finished:
            raise _dropped(ep, framer, None)
        return stop, usage


def _dropped(ep: Endpoint, framer: Framer, exc: BaseException | None) -> EngineFailure:
    return EngineFailure(
        "internal",
        f"The connection to {ep.where} was lost in the middle of the answer (after "
        f"{framer.pieces} pieces): the server may have stopped or restarted. What arrived is "
        "kept; ask again when it is back.",
        f"{type(exc).__name__}: {exc}" if exc else "stream ended without a finish reason",
    )


def _close_on_cancel(conn: http.client.HTTPConnection, control: GenerationControl,
                     finished: threading.Event) -> None:  # fmt: skip
    """Close the socket as soon as a cancel arrives, which unblocks a waiting read."""
    while not finished.wait(0.005):
        if control.cancelled:
            sock = conn.sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            return


def _models_or_none(ep: Endpoint) -> list[str] | None:
    try:
        return fetch_models(ep)
    except EngineFailure:
        return None


def _without_thinking(message: dict[str, str]) -> dict[str, str]:
    """Earlier answers go back without their reasoning (the text before `</think>`)."""
    content = message["content"]
    if message.get("role") == "assistant":
        for _, close in TAG_STYLES:
            if close in content:
                content = content.split(close)[-1].lstrip()
    return {"role": message["role"], "content": content}
