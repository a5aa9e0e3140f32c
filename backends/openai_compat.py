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
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from backends.base import Emit, EmitText, EngineFailure, GenerationControl
from backends.generation import ThinkState, done_stats, parse_request
from backends.think_tags import TAG_STYLES
from backends.util import process_rss

APIS = ("openai", "ollama")
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 300.0  # a 671B model may think before its first token for minutes
MAX_ERROR_BODY = 64 * 1024
# Model names whose chat templates end the generation prompt with "<think>\n" (the output
# then carries only the closing tag when the server has no reasoning parser).
PREOPEN_NAMES = re.compile(r"(deepseek[-_.]?r1|(^|[^a-z0-9])r1([^a-z0-9]|$)|qwq)", re.I)


@dataclass(frozen=True)
class Endpoint:
    """Where a server is and how to reach it; `api_key` is kept out of repr()."""

    base_url: str
    api_key: str | None = field(default=None, repr=False)
    api: str = "openai"
    verify_tls: bool = True
    ca_file: str | None = None
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    read_timeout_s: float = READ_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.api not in APIS:
            raise EngineFailure("bad_request", f"Unknown server API {self.api!r}: use openai or "
                                "ollama.")  # fmt: skip
        parts = urlsplit(self.base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EngineFailure(
                "bad_request",
                f"{safe_url(self.base_url)!r} is not a server address: write it like "
                "http://gpu-box:8000/v1 or https://example.com/v1.",
            )

    @property
    def _parts(self) -> Any:
        return urlsplit(self.base_url.strip())

    @property
    def host(self) -> str:
        return str(self._parts.hostname)

    @property
    def port(self) -> int:
        parts = self._parts
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def where(self) -> str:
        """host:port, for messages."""
        return f"{self.host}:{self.port}"

    def path(self, suffix: str) -> str:
        """The request path: the base URL's path (`/v1` if none, for the OpenAI API) + suffix."""
        prefix = self._parts.path.rstrip("/")
        if self.api == "openai" and not prefix:
            prefix = "/v1"
        if self.api == "ollama" and prefix.endswith("/v1"):
            prefix = prefix[:-3]
        return prefix + suffix

    def connect(self, timeout: float | None = None) -> http.client.HTTPConnection:
        timeout = self.connect_timeout_s if timeout is None else timeout
        if self._parts.scheme == "https":
            context = ssl.create_default_context(cafile=self.ca_file)
            if not self.verify_tls:  # only when the user turned checking off for this server
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                               context=context)  # fmt: skip
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def headers(self, streaming: bool = False) -> dict[str, str]:
        h = {"Content-Type": "application/json", "User-Agent": "Ponder"}
        h["Accept"] = (
            "text/event-stream" if streaming and self.api == "openai" else "application/json"
        )
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        return h


def safe_url(url: str) -> str:
    """A URL as it may appear in messages and logs: no user:password, no query string."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return "(unreadable address)"
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else url.split("?")[0]


# -- errors in words ------------------------------------------------------------------------
def network_failure(exc: BaseException, ep: Endpoint, kind: str, timeout_s: float) -> EngineFailure:
    """A socket-level failure (refused, unknown host, timeout, TLS) as a sentence."""
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        msg = (f"The TLS certificate of {ep.host} could not be verified "
               f"({exc.verify_message or exc.reason}): check the address, give the server's "
               "CA certificate, or turn certificate checking off only if you trust the "
               "network.")  # fmt: skip
    elif isinstance(exc, ssl.SSLError):
        msg = (f"The secure (TLS) connection to {ep.where} failed: if the server speaks plain "
               "HTTP, use an http:// address.")  # fmt: skip
    elif isinstance(exc, ConnectionRefusedError):
        msg = (f"Nothing answers at {ep.where} (connection refused): is the server running, "
               "and is the port right?")  # fmt: skip
    elif isinstance(exc, socket.gaierror):
        msg = f"The server name {ep.host!r} could not be found: check the address."
    elif isinstance(exc, TimeoutError | socket.timeout):
        msg = (f"The server at {ep.where} did not answer within {timeout_s:.0f} s: it may be "
               "overloaded, or a firewall drops the connection.")  # fmt: skip
    elif isinstance(exc, http.client.BadStatusLine | http.client.RemoteDisconnected):
        msg = (f"The server at {ep.where} closed the connection without an HTTP answer: is "
               "this the right port, and is it an HTTP server?")  # fmt: skip
    else:
        msg = f"Could not talk to the server at {ep.where}: {exc}."
    return EngineFailure(kind, msg, detail)


def server_message(body: bytes) -> str:
    """The error text a server put in its body (OpenAI, vLLM, Ollama, FastAPI shapes)."""
    text = body[:MAX_ERROR_BODY].decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:300]
    found: Any = data
    for key in ("error", "message", "detail"):
        if isinstance(found, dict) and key in found:
            found = found[key]
    if isinstance(found, dict):
        found = found.get("message") or json.dumps(found)
    if isinstance(found, list):
        found = "; ".join(str(x.get("msg", x)) if isinstance(x, dict) else str(x) for x in found)
    return " ".join(str(found).split())[:300]


def http_failure(
    status: int, body: bytes, ep: Endpoint, during_load: bool, model: str | None = None,
    models: list[str] | None = None, retry_after: str | None = None,
) -> EngineFailure:  # fmt: skip
    """An HTTP error status as a sentence; `models` lists what the server has for a 404."""
    said = server_message(body)
    if ep.api_key and ep.api_key in said:
        said = said.replace(ep.api_key, "…")
    detail = f"HTTP {status}: {said}"
    kind = "bad_model" if during_load else "bad_request"
    low = said.lower()
    if status in (401, 403):
        msg = (f"The server at {ep.where} refused the API key ({status}"
               f"{' Unauthorized' if status == 401 else ' Forbidden'}): "
               f"{'enter the key it expects' if not ep.api_key else 'check the key'} in "
               "Connect to a server.")  # fmt: skip
    elif status == 404 and model and (models is not None or "model" in low):
        have = ", ".join(models[:20]) if models else "none it would list"
        msg = f"The server at {ep.where} has no model called {model!r}. It serves: {have}."
    elif status == 404:
        msg = (f"The server at {ep.where} has no {ep.path('')}… endpoint (404): check the "
               f"address{' (it usually ends in /v1)' if ep.api == 'openai' else ''}.")  # fmt: skip
    elif status == 429:
        wait = f" Wait {retry_after} s and try again." if retry_after else " Wait and try again."
        msg = f"The server is busy or your quota is used up (429 Too Many Requests).{wait}"
    elif status in (400, 413, 422) and ("context" in low or "too long" in low
                                        or "maximum" in low and "token" in low):  # fmt: skip
        return EngineFailure(
            "context_overflow",
            f"The conversation is too long for the server's context: {said} Start a new chat "
            "or drop old turns.",
            detail,
        )
    elif status >= 500:
        kind = "out_of_memory" if "out of memory" in low else ("bad_model" if during_load
                                                              else "internal")  # fmt: skip
        msg = (f"The server at {ep.where} failed ({status}): {said or 'no reason given'}. "
               "Its own log says more; try again in a moment.")  # fmt: skip
    else:
        msg = f"The server refused the request ({status}): {said or 'no reason given'}."
    return EngineFailure(kind, msg, detail)


# -- small requests -------------------------------------------------------------------------
def _request_json(ep: Endpoint, method: str, path: str, during_load: bool,
                  body: dict[str, Any] | None = None) -> Any:  # fmt: skip
    conn = ep.connect()
    kind = "bad_model" if during_load else "bad_request"
    try:
        payload = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=payload, headers=ep.headers())
        resp = conn.getresponse()
        data = resp.read(8 << 20)
    except (OSError, http.client.HTTPException) as exc:
        raise network_failure(exc, ep, kind, ep.connect_timeout_s) from None
    finally:
        conn.close()
    if resp.status != 200:
        raise http_failure(
            resp.status, data, ep, during_load, retry_after=resp.getheader("Retry-After")
        )
    try:
        return json.loads(data)
    except ValueError:
        raise EngineFailure(
            kind,
            f"The server at {ep.where} answered {path} with something "
            "that is not JSON: is this an OpenAI-compatible server?",
        ) from None


def fetch_models(ep: Endpoint, during_load: bool = False) -> list[str]:
    """The model ids the server lists (`/v1/models`, or Ollama's `/api/tags`)."""
    if ep.api == "ollama":
        data = _request_json(ep, "GET", ep.path("/api/tags"), during_load)
        items = data.get("models", []) if isinstance(data, dict) else []
        return [str(m.get("name") or m.get("model")) for m in items if isinstance(m, dict)]
    data = _request_json(ep, "GET", ep.path("/models"), during_load)
    items = data.get("data", []) if isinstance(data, dict) else []
    return [str(m["id"]) for m in items if isinstance(m, dict) and "id" in m]


def list_models(
    base_url: str,
    api_key: str | None = None,
    api: str = "openai",
    verify_tls: bool = True,
    timeout_s: float = CONNECT_TIMEOUT_S,
) -> list[str]:
    """The server's models; raises EngineFailure in words (bad address, key, network)."""
    ep = Endpoint(base_url, api_key, api, verify_tls, connect_timeout_s=timeout_s)
    return fetch_models(ep)


@dataclass(frozen=True)
class ConnectionReport:
    """What "Test connection" found: ok, a sentence, the models, how long it took."""

    ok: bool
    message: str
    models: tuple[str, ...] = ()
    seconds: float = 0.0
    detail: str = ""


def test_connection(base_url: str, api_key: str | None = None, api: str = "openai",
                    verify_tls: bool = True, timeout_s: float = CONNECT_TIMEOUT_S,
                    model: str | None = None) -> ConnectionReport:  # fmt: skip
    """Reach the server, check the key, list its models; never raises."""
    t0 = time.perf_counter()
    try:
        ep = Endpoint(base_url, api_key, api, verify_tls, connect_timeout_s=timeout_s)
        models = fetch_models(ep)
    except EngineFailure as exc:
        return ConnectionReport(False, exc.message, (), time.perf_counter() - t0, exc.detail)
    took = time.perf_counter() - t0
    if not models:
        return ConnectionReport(False, f"Connected to {ep.where}, but the server lists no "
                                "models: load one on the server first.", (), took)  # fmt: skip
    names = ", ".join(models[:5]) + (f" and {len(models) - 5} more" if len(models) > 5 else "")
    msg = f"Connected to {ep.where} in {took * 1000:.0f} ms. It serves: {names}."
    if model and model not in models:
        return ConnectionReport(False, f"Connected, but the server has no model called "
                                f"{model!r}. It serves: {names}.", tuple(models), took)  # fmt: skip
    return ConnectionReport(True, msg, tuple(models), took)


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


# -- streaming ------------------------------------------------------------------------------
def sse_events(lines: Iterator[bytes]) -> Iterator[str]:
    """The `data` payloads of a server-sent-event stream (multi-line data joined by \\n)."""
    data: list[str] = []
    for raw in lines:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


@dataclass
class Piece:
    """One parsed chunk: reasoning text, answer text, and what ended the stream."""

    reasoning: str = ""
    content: str = ""
    finish: str | None = None
    usage: dict[str, Any] | None = None
    error: str | None = None
    done: bool = False


def parse_openai_chunk(payload: str) -> Piece:
    """One SSE `data` payload of /v1/chat/completions."""
    if payload.strip() == "[DONE]":
        return Piece(done=True)
    try:
        obj = json.loads(payload)
    except ValueError:
        return Piece()
    if not isinstance(obj, dict):
        return Piece()
    if obj.get("error"):
        return Piece(error=server_message(json.dumps(obj).encode()))
    piece = Piece(usage=obj.get("usage") if isinstance(obj.get("usage"), dict) else None)
    choices = obj.get("choices") or []
    if choices and isinstance(choices[0], dict):
        choice = choices[0]
        delta = choice.get("delta") or choice.get("message") or {}
        piece.reasoning = (delta.get("reasoning_content") or delta.get("reasoning")
                           or delta.get("thinking") or "")  # fmt: skip
        piece.content = delta.get("content") or ""
        if not isinstance(piece.content, str):  # content parts
            piece.content = "".join(p.get("text", "") for p in piece.content if isinstance(p, dict))
        piece.finish = choice.get("finish_reason")
    return piece


def parse_ollama_line(line: bytes) -> Piece:
    """One JSON line of Ollama's native /api/chat stream."""
    try:
        obj = json.loads(line)
    except ValueError:
        return Piece()
    if not isinstance(obj, dict):
        return Piece()
    if obj.get("error"):
        return Piece(error=str(obj["error"])[:300])
    msg = obj.get("message") or {}
    piece = Piece(reasoning=msg.get("thinking") or "", content=msg.get("content") or "")
    if obj.get("done"):
        piece.finish = obj.get("done_reason") or "stop"
        piece.usage = {"prompt_tokens": obj.get("prompt_eval_count"),
                       "completion_tokens": obj.get("eval_count")}  # fmt: skip
        piece.done = True
    return piece


class Framer:
    """Turns reasoning fields and content into one raw text stream with think tags.

    The `started` event waits for the first text, because only then is it known whether the
    server sends reasoning as a field (then this wraps it) or as text, and whether that text
    opens its own think block or starts inside one (a template that pre-opens `<think>`).
    """

    def __init__(self, assume_open: bool, emit_started: Any, emit_text: EmitText) -> None:
        self.assume_open = assume_open
        self._emit_started = emit_started
        self._emit_text = emit_text
        self.started = False
        self.thinking_open = False
        self.in_field = False  # inside a block this framer opened for a reasoning field
        self._held = ""
        self._held_tokens = 0
        self.state = ThinkState(False, "</think>")
        self.pieces = 0

    def _start(self, thinking_open: bool) -> None:
        self.started = True
        self.thinking_open = thinking_open
        self.state = ThinkState(thinking_open, "</think>")
        self._emit_started(thinking_open)

    def _out(self, text: str, tokens: int) -> None:
        if text or tokens:
            self.state.feed(text, tokens)
            self._emit_text(text, tokens)

    def feed(self, piece: Piece) -> None:
        if piece.reasoning:
            if not self.started:
                self._start(False)
            elif self._held:
                self._flush_held()
            if not self.in_field and not self.state.thinking:
                self._out("<think>", 0)
            self.in_field = True
            self.pieces += 1
            self._out(piece.reasoning, 1)
        if piece.content:
            self.pieces += 1
            if self.in_field:
                self.in_field = False
                self._out("</think>\n\n", 0)
            if self.started and not self._held:
                self._out(piece.content, 1)
                return
            self._held += piece.content
            self._held_tokens += 1
            head = self._held.lstrip()
            opens = any(head.startswith(o) for o, _ in TAG_STYLES)
            maybe = any(o.startswith(head) for o, _ in TAG_STYLES)
            if opens or not maybe:
                self._flush_held()

    def _flush_held(self) -> None:
        head = self._held.lstrip()
        opens = next((o for o, _ in TAG_STYLES if head.startswith(o)), None)
        if not self.started:
            self._start(self.assume_open and opens is None)
        text, self._held = self._held, ""
        tokens, self._held_tokens = self._held_tokens, 0
        self._out(text, tokens)

    def finish(self) -> None:
        if self._held or not self.started:
            self._flush_held()


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
            options: dict[str, Any] = {"temperature": req.temperature, "top_p": req.top_p,
                                       "num_predict": req.max_tokens}  # fmt: skip
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
                                "temperature": req.temperature, "top_p": req.top_p,
                                "max_tokens": req.max_tokens}  # fmt: skip
        if req.seed is not None:
            body["seed"] = req.seed
        if self.include_usage:
            body["stream_options"] = {"include_usage": True}
        return ep.path("/chat/completions"), body

    def generate(self, cmd: dict[str, Any], control: GenerationControl, emit: Emit,
                 emit_text: EmitText) -> dict[str, Any]:  # fmt: skip
        if self.endpoint is None:
            raise EngineFailure("bad_request", "No server model is loaded: connect first.")
        ep = self.endpoint
        request_id = str(cmd.get("id"))
        path, body = self._body(cmd)
        t0 = time.perf_counter()
        first: list[float] = []

        def started(thinking_open: bool) -> None:
            emit({"event": "started", "id": request_id, "prompt_tokens": 0,
                  "thinking_open": thinking_open, "think_start": "<think>",
                  "think_end": "</think>"})  # fmt: skip

        def text(t: str, n: int) -> None:
            if n and not first:
                first.append(time.perf_counter())
            emit_text(t, n)

        framer = Framer(self.assume_open, started, text)
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
                    return done_stats(0, 0, t0, None, "cancelled", framer.state)
                raise network_failure(exc, ep, "internal", ep.read_timeout_s) from None
            if resp.status != 200:
                data = resp.read(MAX_ERROR_BODY)
                if resp.status in (400, 422) and self.include_usage and b"stream_options" in data:
                    self.include_usage = False  # an older server: ask once more without it
                    conn.close()
                    return self.generate(cmd, control, emit, emit_text)
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
        produced = framer.pieces
        prompt_tokens = 0
        if usage:
            produced = int(usage.get("completion_tokens") or produced)
            prompt_tokens = int(usage.get("prompt_tokens") or 0)
        return done_stats(produced, prompt_tokens, t0, first[0] if first else None, stop,
                          framer.state, remote=True)  # fmt: skip

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
