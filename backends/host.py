"""The engine process: loads models and generates, talking JSON lines to the GUI side.

Run as `python -m backends.host` (or the frozen app with `--engine-host`). Commands arrive
on stdin; events leave on a private copy of the original stdout, because llama.cpp
writes to the process's stdout/stderr while loading. A generation runs on its own thread
so `cancel` and `answer_now` are read while it streams. See backends/base.py for the
protocol. A native crash kills only this process; the client reports it.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time
from typing import Any, TextIO

from backends.base import DELTA_FLUSH_S, ENGINES, PROTOCOL_VERSION, EngineFailure, GenerationControl
from backends.util import process_rss


class EventWriter:
    """Writes events as JSON lines, from any thread, and batches text deltas by time."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._pending: dict[str, list[Any]] = {}  # id -> [text, tokens, last flush time]

    def send(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, ensure_ascii=False)
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()

    def text(self, request_id: str, text: str, tokens: int) -> None:
        """Queue raw text; the first delta of a request goes out at once, then by time."""
        now = time.monotonic()
        slot = self._pending.get(request_id)
        if slot is None:
            self._pending[request_id] = ["", 0, now]
            self.send({"event": "delta", "id": request_id, "text": text, "tokens": tokens})
            return
        slot[0] += text
        slot[1] += tokens
        if now - slot[2] >= DELTA_FLUSH_S:
            self.flush(request_id)

    def flush(self, request_id: str, final: bool = False) -> None:
        slot = self._pending.pop(request_id, None) if final else self._pending.get(request_id)
        if slot and (slot[0] or slot[1]):
            self.send({"event": "delta", "id": request_id, "text": slot[0], "tokens": slot[1]})
            slot[0], slot[1], slot[2] = "", 0, time.monotonic()


class Host:
    """The command loop: one engine, at most one generation at a time."""

    def __init__(self, writer: EventWriter) -> None:
        self.writer = writer
        self.engine: Any = None
        self.worker: threading.Thread | None = None
        self.control: Any = None
        self.request_id: str | None = None
        self.busy = False  # cleared before the final event, so the next chat is accepted

    def handle(self, cmd: dict[str, Any]) -> bool:
        """Run one command; return False to stop the loop."""
        kind = cmd.get("cmd")
        try:
            if kind == "load":
                self._wait_idle()
                self._load(cmd)
            elif kind == "chat":
                self._chat(cmd)
            elif kind in ("cancel", "answer_now"):
                if self.control is not None and cmd.get("id") in (None, self.request_id):
                    setattr(self.control, "cancelled" if kind == "cancel" else kind, True)
            elif kind == "unload":
                self._wait_idle()
                if self.engine is not None:
                    self.engine.unload()
                self.writer.send({"event": "unloaded", "rss_bytes": process_rss()})
            elif kind == "shutdown":
                if self.control is not None:
                    self.control.cancelled = True
                self._wait_idle()
                return False
            elif kind == "ping":
                self.writer.send({"event": "pong", "rss_bytes": process_rss()})
            else:
                raise EngineFailure("bad_request", f"Unknown command {kind!r}.")
        except EngineFailure as exc:
            self.writer.send(exc.to_event(cmd.get("id")) | {"detail": exc.detail})
        except Exception as exc:  # noqa: BLE001 - reported, the loop lives on
            self.writer.send(
                {"event": "error", "id": cmd.get("id"), "kind": "internal", "message": str(exc)}
            )
        return True

    def _load(self, cmd: dict[str, Any]) -> None:
        path = cmd.get("path")
        if not isinstance(path, str) or not path:
            raise EngineFailure("bad_request", "No model file was given.")
        engine_name = cmd.get("engine") or "llama_cpp"
        if self.engine is None or self.engine.name != engine_name:
            if self.engine is not None:
                self.engine.unload()
            self.engine = make_engine(engine_name)
        opts = {k: v for k, v in cmd.items() if k not in ("cmd", "path", "engine")}
        info = self.engine.load(path, **opts)
        self.writer.send({"event": "loaded", "info": info})

    def _chat(self, cmd: dict[str, Any]) -> None:
        if self.busy:
            raise EngineFailure("bad_request", "The engine is still answering: stop it first.")
        if self.engine is None or not self.engine.info:
            raise EngineFailure("bad_request", "No model is loaded: load one first.")
        self._wait_idle()  # a finished generation's thread may still be winding down
        self.busy = True
        self.control = GenerationControl()
        self.request_id = str(cmd.get("id"))
        self.worker = threading.Thread(
            target=self._generate, args=(cmd, self.control), name="generate", daemon=True
        )
        self.worker.start()

    def _generate(self, cmd: dict[str, Any], control: Any) -> None:
        request_id = str(cmd.get("id"))
        try:
            stats = self.engine.generate(
                cmd,
                control,
                self.writer.send,
                lambda text, n: self.writer.text(request_id, text, n),
            )
            final = {"event": "done", "id": request_id, "stats": stats}
        except EngineFailure as exc:
            final = exc.to_event(request_id) | {"detail": exc.detail}
        except Exception as exc:  # noqa: BLE001 - reported, the process lives on
            kind = "out_of_memory" if isinstance(exc, MemoryError) else "internal"
            final = {"event": "error", "id": request_id, "kind": kind, "message": str(exc)}
        self.writer.flush(request_id, final=True)
        self.busy = False
        self.writer.send(final)

    def _wait_idle(self) -> None:
        if self.worker is not None:
            self.worker.join()
            self.worker = None


def make_engine(name: str) -> Any:
    """Import and build the named engine; a missing library is a clear error."""
    target = ENGINES.get(name)
    if target is None:
        raise EngineFailure("bad_request", f"There is no engine called {name!r}.")
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EngineFailure(
            "bad_request", f"The {name} engine is not installed here ({exc.name} is missing)."
        ) from exc
    return getattr(module, class_name)()


def protocol_channel() -> TextIO:
    """Keep the real stdout for events; point fd 1 at stderr so native prints can't break it."""
    proto_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(proto_fd, "w", encoding="utf-8", buffering=1)


def main() -> int:
    writer = EventWriter(protocol_channel())
    host = Host(writer)
    writer.send({"event": "ready", "pid": os.getpid(), "protocol": PROTOCOL_VERSION})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            cmd = json.loads(line)
            if not isinstance(cmd, dict):
                raise ValueError("not an object")
        except ValueError:
            writer.send(
                {"event": "error", "id": None, "kind": "bad_request", "message": "bad command"}
            )
            continue
        if not host.handle(cmd):
            break
    if host.engine is not None:
        host.engine.unload()
    return 0


if __name__ == "__main__":
    sys.exit(main())
