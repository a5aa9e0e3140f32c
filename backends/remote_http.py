"""Talking HTTP to an OpenAI-compatible server: the endpoint, model lists, and failures in words.

Standard library only (http.client). Every network or HTTP failure becomes an EngineFailure
whose message says what happened and what to do; the API key is never part of a message.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import ssl
import time
from base64 import b64encode
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import (  # type: ignore[attr-defined]  # not in typeshed's urllib stubs
    getproxies,
    proxy_bypass_environment,
)

from backends.base import EngineFailure

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
    # {"http": url, "https": url, "no": "host,.domain"}; None: from this process's environment
    proxies: dict[str, str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.api not in APIS:
            raise EngineFailure("bad_request", f"Unknown server API {self.api!r}: use openai or "
                                "ollama.")  # fmt: skip
        object.__setattr__(self, "base_url", with_scheme(self.base_url))
        check_address(self.base_url)

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

    @property
    def proxy(self) -> str | None:
        """The proxy URL for this server (HTTP(S)_PROXY unless NO_PROXY names the host)."""
        table = {k.lower(): v for k, v in (self.proxies if self.proxies is not None
                                           else getproxies()).items()}  # fmt: skip
        url = table.get(self._parts.scheme)
        if not url or proxy_bypass_environment(self.host, table):
            return None
        return with_scheme(url)

    def connect(self, timeout: float | None = None) -> http.client.HTTPConnection:
        timeout = self.connect_timeout_s if timeout is None else timeout
        proxy = self.proxy
        host, port = self.host, self.port
        if proxy:
            pp = urlsplit(proxy)
            host, port = str(pp.hostname), pp.port or 80
        if self._parts.scheme == "https":
            context = ssl.create_default_context(cafile=self.ca_file)
            if not self.verify_tls:  # only when the user turned checking off for this server
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
            if proxy:  # a CONNECT tunnel through the proxy to the server
                conn.set_tunnel(self.host, self.port, headers=_proxy_auth(proxy))
            return conn
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def target(self, path: str) -> str:
        """The request target: the path, or the whole URL when a plain-HTTP proxy forwards it."""
        if self.proxy and self._parts.scheme == "http":
            return f"http://{self.host}:{self.port}{path}"
        return path

    def headers(self, streaming: bool = False) -> dict[str, str]:
        h = {"Content-Type": "application/json", "User-Agent": "Ponder"}
        h["Accept"] = (
            "text/event-stream" if streaming and self.api == "openai" else "application/json"
        )
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        proxy = self.proxy
        if proxy and self._parts.scheme == "http":
            h.update(_proxy_auth(proxy))
        return h

    def mask(self, text: str) -> str:
        """Server text with the API key taken out (a server may echo it in an error)."""
        key = self.api_key
        if key and len(key) >= 4 and key in text:
            text = text.replace(key, "…")
        return text


def _proxy_auth(proxy: str) -> dict[str, str]:
    pp = urlsplit(proxy)
    if not pp.username:
        return {}
    pair = f"{unquote(pp.username)}:{unquote(pp.password or '')}".encode()
    return {"Proxy-Authorization": "Basic " + b64encode(pair).decode("ascii")}


def with_scheme(url: str) -> str:
    """An address without a scheme is HTTP: "gpu-box:8000/v1" -> "http://gpu-box:8000/v1"."""
    url = url.strip()
    if url and "://" not in url:
        url = "http://" + url
    return url


def check_address(url: str) -> None:
    """Refuse, in words, what is not a server address or carries a user name and password."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise EngineFailure(
            "bad_request",
            f"{safe_url(url)!r} is not a server address: write it like "
            "http://gpu-box:8000/v1 or https://example.com/v1.",
        )
    if parts.username or parts.password:
        raise EngineFailure(
            "bad_request",
            "Leave the user name and password out of the server address: Ponder would have "
            "to keep them in plain text. Put the server's key in the API key field instead "
            "(it is kept in the system's password store).",
        )


def safe_url(url: str) -> str:
    """A URL as it may appear in messages and logs: no user:password, no query string."""
    try:
        parts = urlsplit(with_scheme(url))
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
    except ValueError:
        return "(unreadable address)"
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else url.split("?")[0]


# -- errors in words ------------------------------------------------------------------------
def network_failure(exc: BaseException, ep: Endpoint, kind: str, timeout_s: float) -> EngineFailure:
    """A socket-level failure (refused, unknown host, timeout, TLS) as a sentence."""
    detail = ep.mask(f"{type(exc).__name__}: {exc}")
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
    said = ep.mask(server_message(body))
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
    elif status in (400, 413, 422, 500) and (words := length_failure(said, detail)):
        return words
    elif status >= 500:
        kind = "out_of_memory" if "out of memory" in low else ("bad_model" if during_load
                                                              else "internal")  # fmt: skip
        msg = (f"The server at {ep.where} failed ({status}): {said or 'no reason given'}. "
               "Its own log says more; try again in a moment.")  # fmt: skip
    else:
        msg = f"The server refused the request ({status}): {said or 'no reason given'}."
    return EngineFailure(kind, msg, detail)


def length_failure(said: str, detail: str) -> EngineFailure | None:
    """A server's "too long" refusal in the app's words, or None if it is something else.

    vLLM: "'max_tokens' or 'max_completion_tokens' is too large: …" (the answer length limit)
    and "This model's maximum context length is N tokens. However, …"; SGLang: "The input
    (N tokens) is longer than the model's context length (M tokens)."; llama-server: "the
    request exceeds the available context size" (type exceed_context_size_error), as an
    HTTP 400/500 or, in 2025 builds, inside an HTTP 200 stream.
    """
    low = said.lower()
    if "max_tokens" in low or "max_completion_tokens" in low or "max_new_tokens" in low:
        return EngineFailure(
            "bad_request",
            f"The answer length limit is more than the server's context leaves room for: "
            f"lower the answer length limit in Settings (or clear it to use what is left). "
            f"The server said: {said}",
            detail,
        )
    if ("context" in low and any(w in low for w in ("length", "size", "window", "exceed",
                                                     "too long", "longer")))  \
            or "too long" in low or ("maximum" in low and "token" in low):  # fmt: skip
        return EngineFailure(
            "context_overflow",
            f"The conversation is too long for the server's context: start a new chat or drop "
            f"old turns. The server said: {said}",
            detail,
        )
    return None


def stream_failure(said: str, ep: Endpoint) -> EngineFailure:
    """An error a server sent inside its answer stream (after HTTP 200), in words."""
    said = ep.mask(said) or "no reason given"
    detail = f"error in the stream: {said}"
    words = length_failure(said, detail)
    if words is not None:
        return words
    kind = "out_of_memory" if "out of memory" in said.lower() else "internal"
    return EngineFailure(kind, f"The server stopped the answer with an error: {said}", detail)


# -- small requests -------------------------------------------------------------------------
class NoListing(Exception):
    """The server has no model listing endpoint (404/405/501, or not JSON)."""


def _request_json(ep: Endpoint, method: str, path: str, during_load: bool,
                  body: dict[str, Any] | None = None, missing_ok: bool = False) -> Any:  # fmt: skip
    conn = ep.connect()
    kind = "bad_model" if during_load else "bad_request"
    try:
        payload = json.dumps(body).encode() if body is not None else None
        conn.request(method, ep.target(path), body=payload, headers=ep.headers())
        resp = conn.getresponse()
        data = resp.read(8 << 20)
    except (OSError, http.client.HTTPException) as exc:
        raise network_failure(exc, ep, kind, ep.connect_timeout_s) from None
    finally:
        conn.close()
    if missing_ok and resp.status in (404, 405, 501):
        raise NoListing(resp.status)
    if resp.status != 200:
        raise http_failure(
            resp.status, data, ep, during_load, retry_after=resp.getheader("Retry-After")
        )
    try:
        return json.loads(data)
    except ValueError:
        if missing_ok:
            raise NoListing("not JSON") from None
        raise EngineFailure(
            kind,
            f"The server at {ep.where} answered {path} with something "
            "that is not JSON: is this an OpenAI-compatible server?",
        ) from None


def fetch_models(ep: Endpoint, during_load: bool = False, missing_ok: bool = False) -> list[str]:
    """The model ids the server lists (`/v1/models`, or Ollama's `/api/tags`).

    With `missing_ok`, a server without a listing (older Ollama, some proxies) raises
    `NoListing` instead of a failure: a model name typed by hand can still be used."""
    if ep.api == "ollama":
        data = _request_json(ep, "GET", ep.path("/api/tags"), during_load, missing_ok=missing_ok)
        items = data.get("models", []) if isinstance(data, dict) else []
        names = [m.get("name") or m.get("model") for m in items if isinstance(m, dict)]
    else:
        data = _request_json(ep, "GET", ep.path("/models"), during_load, missing_ok=missing_ok)
        items = data.get("data", []) if isinstance(data, dict) else []
        names = [m["id"] for m in items if isinstance(m, dict) and "id" in m]
    return [ep.mask(str(n))[:200] for n in names if n]


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
        models = fetch_models(ep, missing_ok=True)
    except EngineFailure as exc:
        return ConnectionReport(False, exc.message, (), time.perf_counter() - t0, exc.detail)
    except NoListing as missing:
        listing = ep.path("/api/tags" if ep.api == "ollama" else "/models")
        hint = " (it usually ends in /v1)" if ep.api == "openai" else ""
        return ConnectionReport(
            False,
            f"The server at {ep.where} has no model list at {listing} ({missing}): check the "
            f"address{hint}. A server that does not list its models still works: type the "
            "model's name.",
            (),
            time.perf_counter() - t0,
        )
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
