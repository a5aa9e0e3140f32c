"""The HTTP server: Starlette routes under uvicorn, in front of `ServeRunner`.

Starlette and uvicorn are small, well kept, stream responses natively and tell an app at
once when its client disconnects (the ASGI `http.disconnect` message): a client that goes
away cancels its answer in the engine within a token. Safe by default: 127.0.0.1 unless
another address is chosen, and then only with an API key; the key, when set, is checked on
every request; on 127.0.0.1 the Host header must name this computer (no DNS rebinding); a
request from a web page (an `Origin` header) is refused unless CORS is enabled for it.

Engine work is blocking; it runs on one thread per request, and its events come back to the
event loop through `call_soon_threadsafe`, so waiting never blocks other requests.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.serve import DEFAULT_HOST, DEFAULT_PORT
from app.serve import openai_api as api
from app.serve.errors import ServeError
from app.serve.runner import Finish, Part, ServedAnswer, ServeRunner

log = logging.getLogger(__name__)

MAX_BODY = 32 << 20
LOCAL_NAMES = {"127.0.0.1", "localhost", "::1", "[::1]"}
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def is_loopback(host: str) -> bool:
    """Whether `host` is only reachable from this computer."""
    if host in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_api_key() -> str:
    return "sk-ponder-" + secrets.token_urlsafe(24)


@dataclass
class ServeConfig:
    """Where to listen and who may ask."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_key: str | None = None
    cors_origins: list[str] = field(default_factory=list)

    def check(self) -> None:
        """Refuse, in words, an address other computers can reach without a key."""
        if not is_loopback(self.host) and not self.api_key:
            raise ValueError(
                f"Serving on {self.host} lets other computers reach Ponder: set an API key "
                "(--api-key), or serve on 127.0.0.1."
            )

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        return f"http://{host}:{self.port}/v1"


def error_response(exc: ServeError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


def _host_name(header: str) -> str:
    if header.startswith("["):
        return header[: header.find("]") + 1]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Gate:
    """The checks every request passes: key, Host on loopback, Origin without CORS."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config

    def check(self, request: Request) -> None:
        cfg = self.config
        if is_loopback(cfg.host):
            host = _host_name(request.headers.get("host", ""))
            if host and not is_loopback(host):
                raise ServeError(403, "This server answers only requests to 127.0.0.1 or "
                                 f"localhost, not {host[:100]!r}.",
                                 code="host_refused")  # fmt: skip
        origin = request.headers.get("origin")
        if origin and origin not in cfg.cors_origins and "*" not in cfg.cors_origins:
            raise ServeError(403, "Requests from web pages are refused: start the server with "
                             "--cors ORIGIN to allow that page.",
                             code="origin_refused")  # fmt: skip
        if cfg.api_key:
            given = request.headers.get("authorization", "")
            scheme, _, token = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                token.strip().encode(), cfg.api_key.encode()
            ):
                raise ServeError(401, "Wrong or missing API key: send it as `Authorization: "
                                 "Bearer KEY` (the key Ponder showed when serving started).",
                                 code="invalid_api_key")  # fmt: skip


def _in_thread(fn: Callable[..., Any], *args: Any) -> asyncio.Future:
    """Run blocking `fn` on its own thread; its result (or exception) as a future."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if not future.done():
            (future.set_result if ok else future.set_exception)(value)

    def work() -> None:
        try:
            result = fn(*args)
        except BaseException as exc:  # handed to the awaiting request
            loop.call_soon_threadsafe(settle, False, exc)
        else:
            loop.call_soon_threadsafe(settle, True, result)

    threading.Thread(target=work, name="serve-request", daemon=True).start()
    return future


async def _disconnected(receive: Callable[[], Any]) -> None:
    """Return when the client has gone (the body is already read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _until_gone(request: Request, work: asyncio.Future, gone: threading.Event) -> bool:
    """Wait for `work`; True if the client disconnected first (`gone` is then set)."""
    watcher = asyncio.ensure_future(_disconnected(request.receive))
    try:
        await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if work.done():
        return False
    gone.set()
    return True


class EventStream:
    """An SSE response that cancels its answer the moment the client disconnects."""

    def __init__(self, answer: ServedAnswer, chunks: AsyncIterator[bytes]) -> None:
        self.answer = answer
        self.chunks = chunks

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
        headers += [(k.encode(), v.encode()) for k, v in SSE_HEADERS.items()]

        async def pump() -> None:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            async for data in self.chunks:
                await send({"type": "http.response.body", "body": data, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        streaming = asyncio.ensure_future(pump())
        watcher = asyncio.ensure_future(_disconnected(receive))
        try:
            await asyncio.wait({streaming, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not streaming.done():
                self.answer.cancel()  # first: the engine stops within a token
                streaming.cancel()
            watcher.cancel()
            await asyncio.gather(streaming, return_exceptions=True)
            await self.chunks.aclose()  # type: ignore[attr-defined]


def sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


def build_app(runner: ServeRunner, config: ServeConfig) -> Starlette:
    """The ASGI app: /v1/models, /v1/models/{id}, /v1/chat/completions."""
    gate = Gate(config)

    async def list_models(request: Request) -> Response:
        gate.check(request)
        models = await _in_thread(runner.catalog.models)
        return JSONResponse({"object": "list", "data": [m.to_openai() for m in models]})

    async def one_model(request: Request) -> Response:
        gate.check(request)
        model = await _in_thread(runner.catalog.find, request.path_params["model"])
        return JSONResponse(model.to_openai())

    async def chat(request: Request) -> Response:
        gate.check(request)
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            raise ServeError(413, "The request is larger than 32 MB.")
        try:
            body = json.loads(await request.body())
        except ValueError:
            raise ServeError(400, "The request body is not valid JSON.") from None
        call = api.parse_chat(body)
        gone = threading.Event()
        work = _in_thread(runner.begin, call.model, call.messages, call.params, call.stops, gone)
        if await _until_gone(request, work, gone):
            work.add_done_callback(_discard)
            return Response(status_code=499)
        answer: ServedAnswer | None = work.result()
        if answer is None:
            return Response(status_code=499)
        if call.stream:
            return EventStream(answer, _stream(answer, call))  # type: ignore[return-value]
        collected = _in_thread(_collect, answer)
        if await _until_gone(request, collected, gone):
            answer.cancel()
            return Response(status_code=499)
        thinking, text, finish = collected.result()
        return JSONResponse(api.completion(call, answer.model.id, thinking, text,
                                           finish.reason, finish.usage()))  # fmt: skip

    async def on_error(_request: Request, exc: Exception) -> Response:
        if isinstance(exc, ServeError):
            return error_response(exc)
        if isinstance(exc, HTTPException):
            return error_response(ServeError(exc.status_code, str(exc.detail)))
        log.exception("serve: request failed")
        return error_response(ServeError(500, f"Ponder's server failed: {exc}"))

    routes = [
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", one_model, methods=["GET"]),
        Route("/v1/chat/completions", chat, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={ServeError: on_error,
                                                       HTTPException: on_error,
                                                       Exception: on_error})  # fmt: skip
    if config.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=config.cors_origins,
                           allow_methods=["GET", "POST"],
                           allow_headers=["authorization", "content-type"])  # fmt: skip
    return app


def _discard(work: asyncio.Future) -> None:
    """A request whose client left while it started: stop and release its answer."""
    if work.cancelled() or work.exception() is not None:
        return
    answer = work.result()
    if answer is not None:
        answer.cancel()
        threading.Thread(target=lambda: list(answer.parts()), daemon=True).start()


def _collect(answer: ServedAnswer) -> tuple[str, str, Finish]:
    thinking: list[str] = []
    text: list[str] = []
    for item in answer.parts():
        if isinstance(item, Part):
            thinking.append(item.thinking)
            text.append(item.answer)
        else:
            return "".join(thinking), "".join(text), item
    raise ServeError(500, "The answer ended without its end.")


async def _stream(answer: ServedAnswer, call: api.ChatCall) -> AsyncIterator[bytes]:
    """The SSE body: a role chunk, one chunk per engine batch, the finish, usage, [DONE]."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def read() -> None:
        try:
            for item in answer.parts():
                loop.call_soon_threadsafe(queue.put_nowait, item)
        except BaseException as exc:
            loop.call_soon_threadsafe(queue.put_nowait, exc)

    reader = threading.Thread(target=read, name="serve-stream", daemon=True)
    model = answer.model.id
    finished = False
    try:
        yield sse(api.chunk(call, model, {"role": "assistant", "content": ""}))
        reader.start()
        while True:
            item = await queue.get()
            if isinstance(item, Part):
                yield sse(api.chunk(call, model, api.delta_of(item.thinking, item.answer)))
            elif isinstance(item, Finish):
                finished = True
                yield sse(api.chunk(call, model, {}, item.reason))
                if call.include_usage:
                    yield sse(api.usage_chunk(call, model, item.usage()))
                break
            else:
                finished = True
                error = item if isinstance(item, ServeError) else ServeError(500, str(item))
                yield sse(error.body())
                break
        yield b"data: [DONE]\n\n"
    finally:
        if not finished:
            answer.cancel()


class LocalServer:
    """uvicorn on a background thread (the window, `ponder-cli serve`, the tests)."""

    def __init__(self, runner: ServeRunner, config: ServeConfig) -> None:
        import uvicorn

        config.check()
        self.runner = runner
        self.config = config
        self.app = build_app(runner, config)
        self._server = uvicorn.Server(uvicorn.Config(
            self.app, host=config.host, port=config.port, log_config=None, access_log=False,
            lifespan="off", timeout_graceful_shutdown=3, log_level="warning",
        ))  # fmt: skip
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @property
    def port(self) -> int:
        """The port listened on (the chosen one, or the one the system gave for port 0)."""
        for server in getattr(self._server, "servers", []) or []:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return self.config.port

    @property
    def base_url(self) -> str:
        return ServeConfig(self.config.host, self.port).base_url

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout_s: float = 15.0) -> None:
        """Start on a background thread; OSError in words if the address cannot be used."""

        def run() -> None:
            try:
                self._server.run()
            except BaseException as exc:  # reported by start()
                self.error = exc

        self._thread = threading.Thread(target=run, name="ponder-serve", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                why = self.error or "the address is in use or not this computer"
                raise OSError(f"Could not listen on {self.config.host}:{self.config.port}: "
                              f"{why}.")  # fmt: skip
            time.sleep(0.01)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop answering (a streaming answer is cancelled) and stop listening."""
        self._server.should_exit = True
        self.runner.cancel_active()
        if self._thread is not None:
            self._thread.join(timeout_s)
