"""The remote engine: a server that speaks the OpenAI chat API (vLLM, SGLang, llama-server, Ollama).

Runs inside the engine process like the local engines, but generates nothing itself: it
streams `/v1/chat/completions` (server-sent events) or Ollama's native `/api/chat` (JSON
lines) over the standard library's http.client. Reasoning that a server sends as its own
field (`reasoning_content`, `reasoning`, Ollama's `thinking`) is wrapped in
`<think>…</think>`, so the client's one splitter handles every server; plain `<think>` text
in `content` passes through. A chat without thinking asks for it the servers' way:
`chat_template_kwargs: {"enable_thinking": false}` (vLLM, SGLang, llama-server pass it to
the model's template) or Ollama's `think: false`. Cancel closes the socket at once. HTTP
and network failures become EngineFailure with words a person can act on. TLS certificates
are verified unless the user turns that off for a server. The API key arrives in the `load`
command, lives only in memory, and is never logged or echoed in a message.
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
from backends.remote_body import MAX_LINE, BadFraming, BodyLines, LineTooLong
from backends.remote_http import (
    CONNECT_TIMEOUT_S,
    MAX_ERROR_BODY,
    PREOPEN_NAMES,
    READ_TIMEOUT_S,
    Endpoint,
    NoListing,
    fetch_models,
    http_failure,
    network_failure,
    safe_url,
    stream_failure,
)
from backends.remote_stream import (
    FORMATS,
    Framer,
    MalformedChunk,
    Piece,
    ending_failure,
    parse_ollama_line,
    parse_openai_chunk,
    sse_events,
)
from backends.think_tags import TAG_STYLES
from backends.util import process_rss

STALL_TIMEOUT_S = 60.0  # silence in the middle of an answer (the first token may take minutes)
FINISH_GRACE_S = 2.0  # after the finish reason: wait this long for usage and [DONE]


class OpenAICompatEngine:
    """A model on a remote server; `load` checks the server, `generate` streams from it."""

    name = "openai"

    def __init__(self) -> None:
        self.info: dict[str, Any] = {}
        self.endpoint: Endpoint | None = None
        self.model = ""
        self.assume_open = False
        self.include_usage = True
        self.think = True  # Ollama native: ask for thinking until the model says it has none
        self.reasoning_format = "auto"
        self.stall_timeout_s = STALL_TIMEOUT_S

    def load(self, path: str, **opts: Any) -> dict[str, Any]:
        """`path` is the base URL; opts: model, api_key, api, verify_tls, ca_file, timeouts,
        thinking_open (True/False, or None to guess from the model name), reasoning_format
        (auto, field, tags, none), proxies ({"http", "https", "no"}; default: environment)."""
        t0 = time.perf_counter()
        fmt = str(opts.get("reasoning_format") or "auto")
        if fmt not in FORMATS:
            raise EngineFailure("bad_request", f"Unknown reasoning format {fmt!r}: use one of "
                                f"{', '.join(FORMATS)}.")  # fmt: skip
        proxies = opts.get("proxies")
        ep = Endpoint(
            path,
            opts.get("api_key") or None,
            str(opts.get("api") or "openai"),
            bool(opts.get("verify_tls", True)),
            opts.get("ca_file") or None,
            float(opts.get("connect_timeout_s") or CONNECT_TIMEOUT_S),
            float(opts.get("read_timeout_s") or READ_TIMEOUT_S),
            {str(k): str(v) for k, v in proxies.items()} if isinstance(proxies, dict) else None,
        )
        model = str(opts.get("model") or "").strip()
        try:
            models: list[str] | None = fetch_models(ep, during_load=True, missing_ok=bool(model))
        except NoListing:  # older Ollama, some proxies: the typed name is used as it is
            models = None
        if not model and models and len(models) == 1:
            model = models[0]
        if not model:
            listed = ", ".join((models or [])[:20]) or "it lists none"
            raise EngineFailure("bad_request", f"Choose which of the server's models to use: "
                                f"{listed}.")  # fmt: skip
        if models is not None and model not in models:
            raise http_failure(404, b'{"error": "model not found"}', ep, True, model, models)
        self.endpoint, self.model = ep, model
        self.reasoning_format, self.think = fmt, True
        self.stall_timeout_s = float(opts.get("stall_timeout_s") or STALL_TIMEOUT_S)
        open_opt = opts.get("thinking_open")
        self.assume_open = bool(PREOPEN_NAMES.search(model)) if open_opt is None else bool(open_opt)
        self.info = {
            "path": safe_url(path),
            "engine": self.name,
            "remote": True,
            "api": ep.api,
            "name": model,
            "model": model,
            "server_models": (models or [])[:50],
            "models_listed": models is not None,
            "reasoning_format": fmt,
            "n_ctx": opts.get("n_ctx") or None,
            "context_length": None,
            "chat_template": True,
            "thinking_switch": None,  # the server's template is not seen from here
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
                **({"think": req.thinking} if self.think else {}),
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
        if not req.thinking:  # vLLM, SGLang and llama-server pass it to the chat template
            body["chat_template_kwargs"] = {"enable_thinking": False}
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

        framer = Framer(self.assume_open, started, emit_parts, self.reasoning_format)
        conn = ep.connect()
        sockets: list[socket.socket] = []  # kept: http.client lets go of it for close framing
        closed = threading.Event()
        watcher = threading.Thread(target=_close_on_cancel, args=(sockets, control, closed),
                                   name="cancel-watch", daemon=True)  # fmt: skip
        resp: http.client.HTTPResponse | None = None
        try:
            try:
                conn.connect()
                assert conn.sock is not None
                sockets.append(conn.sock)
                conn.sock.settimeout(ep.read_timeout_s)
                watcher.start()
                conn.request("POST", ep.target(path), body=json.dumps(body).encode(),
                             headers=ep.headers(streaming=True))  # fmt: skip
                resp = conn.getresponse()
                data = resp.read(MAX_ERROR_BODY) if resp.status != 200 else b""
            except (OSError, http.client.HTTPException, AttributeError) as exc:
                if control.cancelled:
                    framer.finish()
                    return framer.answer.done_stats(0, "cancelled", remote=True)
                raise network_failure(exc, ep, "internal", ep.read_timeout_s) from None
            if resp.status != 200:
                if resp.status in (400, 422) and self.include_usage and b"stream_options" in data:
                    self.include_usage = False  # an older server: ask once more without it
                    conn.close()
                    return self.generate(cmd, control, emit, emit_parts)
                if resp.status == 400 and self.think and b"does not support thinking" in data:
                    self.think = False  # Ollama: this model has no thinking; ask without
                    conn.close()
                    return self.generate(cmd, control, emit, emit_parts)
                models = None
                if resp.status == 404 and b"model" in data.lower():
                    models = _models_or_none(ep)
                raise http_failure(resp.status, data, ep, False, self.model, models,
                                   resp.getheader("Retry-After"))  # fmt: skip
            try:
                finish, usage = self._read_stream(resp, sockets[0], framer, control, ep)
            except EngineFailure:
                framer.finish()  # the text held back for a decision is shown and kept
                raise
        finally:
            closed.set()
            if resp is not None:
                resp.close()
            conn.close()
        framer.finish()
        answer = framer.answer
        if control.cancelled:
            finish = "cancelled"
        else:
            failure = ending_failure(finish, framer, ep.where, parse_request(cmd).max_tokens)
            if failure is not None:
                raise failure
        stop = finish if finish in ("length", "cancelled") else "eos"
        prompt_tokens = 0
        if usage:  # the server's exact count replaces the count of pieces
            if isinstance(usage.get("completion_tokens"), int):
                answer.produced = usage["completion_tokens"]
            if isinstance(usage.get("prompt_tokens"), int):
                prompt_tokens = usage["prompt_tokens"]
        return answer.done_stats(prompt_tokens, stop, remote=True)

    def _read_stream(
        self,
        resp: http.client.HTTPResponse,
        sock: socket.socket,
        framer: Framer,
        control: GenerationControl,
        ep: Endpoint,
    ) -> tuple[str | None, dict | None]:
        """Feed the stream to the framer; (finish reason or None, usage) when it ends."""
        body = BodyLines(resp.fp, bool(resp.chunked), resp.length)
        lines = body.lines()
        pieces = (
            (parse_ollama_line(x) for x in lines if x.strip() and x.endswith(b"\n"))
            if ep.api == "ollama"
            else (parse_openai_chunk(p) for p in sse_events(lines))
        )
        finish: str | None = None
        usage: dict | None = None
        events = 0
        try:
            for piece in pieces:
                events += 1
                if control.cancelled:
                    return "cancelled", usage
                if piece.error:
                    raise stream_failure(piece.error, ep)
                before = framer.pieces
                framer.feed(_masked(piece, ep))
                if framer.pieces and not before:  # text flows: from now on, silence is a stall
                    sock.settimeout(self.stall_timeout_s)
                usage = piece.usage or usage
                if piece.finish:
                    finish = piece.finish
                    sock.settimeout(FINISH_GRACE_S)
                if piece.done or (finish and usage):  # no need to wait for [DONE]
                    return finish or "", usage
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if control.cancelled:
                return "cancelled", usage
            if finish:  # the answer was complete; only the end of the stream went missing
                return finish, usage
            raise _read_failure(exc, ep, framer, self.stall_timeout_s) from None
        if control.cancelled:
            return "cancelled", usage
        if finish:
            return finish, usage
        if not events and body.complete:
            raise EngineFailure(
                "internal",
                f"The server at {ep.where} answered with something that is not an answer stream "
                f"({resp.getheader('Content-Type') or 'no content type'}): is it an "
                "OpenAI-compatible server, and does the address end in /v1?",
            )
        raise _dropped(ep, framer, None)


def _masked(piece: Piece, ep: Endpoint) -> Piece:
    if ep.api_key and (ep.api_key in piece.content or ep.api_key in piece.reasoning):
        piece.content, piece.reasoning = ep.mask(piece.content), ep.mask(piece.reasoning)
    return piece


def _read_failure(exc: BaseException, ep: Endpoint, framer: Framer,
                  stall_s: float) -> EngineFailure:  # fmt: skip
    """A failure while reading the stream, in words (what arrived is kept)."""
    detail = ep.mask(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, LineTooLong):
        return EngineFailure("internal", f"The server at {ep.where} sent more than "
                             f"{MAX_LINE // (1 << 20)} MB without a line break, which no answer "
                             "stream does: Ponder stopped reading so it cannot fill the memory. "
                             "The text before it is kept.", detail)  # fmt: skip
    if isinstance(exc, MalformedChunk):
        return EngineFailure("internal", f"The server at {ep.where} sent a piece of the answer "
                             f"that Ponder cannot read ({ep.mask(str(exc))}): is it an "
                             "OpenAI-compatible server? The text before it is kept.",
                             detail)  # fmt: skip
    if isinstance(exc, BadFraming):
        return EngineFailure("internal", f"The server at {ep.where} broke the HTTP framing of "
                             f"its answer ({exc}): a proxy in between may have mangled it. The "
                             "text before it is kept.", detail)  # fmt: skip
    if isinstance(exc, TimeoutError | socket.timeout):
        if framer.pieces:
            return EngineFailure("internal", f"The server at {ep.where} stopped sending in the "
                                 f"middle of the answer (nothing for {stall_s:.0f} s): it may "
                                 "have hung or the network dropped. What arrived is kept; ask "
                                 "again.", detail)  # fmt: skip
        return EngineFailure("internal", f"The server at {ep.where} sent nothing for "
                             f"{ep.read_timeout_s:.0f} s and the answer was stopped: it may be "
                             "overloaded.", detail)  # fmt: skip
    return _dropped(ep, framer, exc)


def _dropped(ep: Endpoint, framer: Framer, exc: BaseException | None) -> EngineFailure:
    return EngineFailure(
        "internal",
        f"The connection to {ep.where} was lost in the middle of the answer (after "
        f"{framer.pieces} pieces): the server may have stopped or restarted. What arrived is "
        "kept; ask again when it is back.",
        ep.mask(f"{type(exc).__name__}: {exc}") if exc else "stream ended without a finish reason",
    )


def _close_on_cancel(sockets: list[socket.socket], control: GenerationControl,
                     finished: threading.Event) -> None:  # fmt: skip
    """Shut the socket down as soon as a cancel arrives, which unblocks a waiting read.

    It holds the socket itself: for a response without a length (`Connection: close`,
    HTTP/1.0) http.client detaches it from the connection in getresponse()."""
    while not finished.wait(0.005):
        if control.cancelled:
            for sock in sockets:
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
