"""Errors the server answers with, in OpenAI's shape and the app's words.

`ServeError` carries the HTTP status and the body `{"error": {message, type, param, code}}`;
`from_engine` turns an engine failure (app.core.engine EngineError or a StreamError) into
one: a conversation longer than the context is 400 `context_length_exceeded`, a model too
large for this machine 400 `model_too_large`, an engine that crashed or hung 500.
"""

from __future__ import annotations

from typing import Any

# engine error kind -> (HTTP status, OpenAI error type, code)
ENGINE_KINDS: dict[str, tuple[int, str, str]] = {
    "bad_request": (400, "invalid_request_error", "bad_request"),
    "context_overflow": (400, "invalid_request_error", "context_length_exceeded"),
    "out_of_memory": (400, "invalid_request_error", "model_too_large"),
    "bad_model": (400, "invalid_request_error", "model_unusable"),
    "engine_crashed": (500, "server_error", "engine_crashed"),
    "engine_hung": (500, "server_error", "engine_hung"),
    "internal": (500, "server_error", "internal_error"),
}
TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
         404: "invalid_request_error", 405: "invalid_request_error",
         413: "invalid_request_error", 503: "server_error"}  # fmt: skip


class ServeError(Exception):
    """A refusal or failure with its HTTP status and a message a person can act on."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None, type: str | None = None) -> None:  # noqa: A002 # fmt: skip
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type or TYPES.get(status, "server_error" if status >= 500 else
                                      "invalid_request_error")  # fmt: skip

    def body(self) -> dict[str, Any]:
        """OpenAI's error object."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}  # fmt: skip


def from_engine(kind: str, message: str) -> ServeError:
    """An engine failure (its kind and words) as the HTTP error the client gets."""
    status, type_, code = ENGINE_KINDS.get(kind, ENGINE_KINDS["internal"])
    return ServeError(status, message or "The engine failed.", code=code, type=type_)
