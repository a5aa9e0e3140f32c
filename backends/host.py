"""The engine process: loads models and generates, talking JSON lines to the GUI side.

Run as `python -m backends.host` (or the frozen app with `--engine-host`). Commands arrive
on stdin; events leave on a private copy of the original stdout, because llama.cpp
writes to the process's stdout/stderr while loading. See backends/base.py for the
protocol: every reply carries its command's id.

The command loop never waits for a model: a generation runs on its own thread and a load
or unload on another, so `ping`, `cancel` and `answer_now` are answered at once while they
work. The EventWriter is the one place text is batched. A native crash kills only this
process; the client reports it.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from backends.base import DELTA_FLUSH_S, ENGINES, PROTOCOL_VERSION, EngineFailure, GenerationControl
from backends.load_checks import is_out_of_memory
from backends.util import process_rss

# How long `shutdown` waits for a generation to honour its cancel before the process exits.
SHUTDOWN_WAIT_S = 5.0


@dataclass
class _Pending:
    """Text of one request not yet sent, and when the last delta of it left."""

    last_sent: float
    thinking: list[str] = field(default_factory=list)
    answer: list[str] = field(default_factory=list)
    thinking_tokens: int = 0
    answer_tokens: int = 0

    def empty(self) -> bool:
        return not (self.thinking or self.answer or self.thinking_tokens or self.answer_tokens)

    def take(self, request_id: str, now: float) -> dict[str, Any]:
        """The delta event for what is pending; the slot is empty afterwards."""
        event = {
            "event": "delta",
            "id": request_id,
            "thinking": "".join(self.thinking),
            "answer": "".join(self.answer),
            "thinking_tokens": self.thinking_tokens,
            "answer_tokens": self.answer_tokens,
        }
        self.thinking, self.answer = [], []
        self.thinking_tokens = self.answer_tokens = 0
        self.last_sent = now
        return event


class EventWriter:
    """Writes events as JSON lines from any thread; the one batching point for text.

    The first delta of a request goes out at once; later text waits at most DELTA_FLUSH_S
    (a flusher thread sends a lone delta when its interval is up); `finish` sends what is
    left before the request's final event, so nothing is reordered or lost.
    """

    def __init__(self, out: TextIO, interval_s: float = DELTA_FLUSH_S) -> None:
        self._out = out
        self._interval = interval_s
        self._cond = threading.Condition()
        self._pending: dict[str, _Pending] = {}
        # when the flusher wakes next (None: it sleeps until notified); a new deadline
        # that is not earlier does not wake it, so it wakes about once per interval
        self._flusher_due: float | None = None
        self._flusher = threading.Thread(target=self._flush_loop, name="flusher", daemon=True)
        self._flusher.start()

    def send(self, event: dict[str, Any]) -> None:
        """Write one event now."""
        with self._cond:
            self._write(event)

    def parts(
        self, request_id: str, thinking: str, answer: str, thinking_tokens: int, answer_tokens: int
    ) -> None:
        """Queue typed text of a request; sent at once if it is the request's first."""
        now = time.monotonic()
        with self._cond:
            slot = self._pending.get(request_id)
            first = slot is None
            if slot is None:
                slot = self._pending[request_id] = _Pending(last_sent=now)
            was_empty = slot.empty()
            if thinking:
                slot.thinking.append(thinking)
            if answer:
                slot.answer.append(answer)
            slot.thinking_tokens += thinking_tokens
            slot.answer_tokens += answer_tokens
            if first or now - slot.last_sent >= self._interval:
                self._write(slot.take(request_id, now))
            elif was_empty:
                due = slot.last_sent + self._interval
                if self._flusher_due is None or due < self._flusher_due:
                    self._cond.notify()  # the flusher now has an earlier deadline to keep

    def finish(self, request_id: str, final: dict[str, Any]) -> None:
        """Send the request's pending text, then its final event (`done` or `error`)."""
        with self._cond:
            slot = self._pending.pop(request_id, None)
            if slot is not None and not slot.empty():
                self._write(slot.take(request_id, time.monotonic()))
            self._write(final)

    def _write(self, event: dict[str, Any]) -> None:
        self._out.write(json.dumps(event, ensure_ascii=False) + "\n")
        self._out.flush()

    def _flush_loop(self) -> None:
        with self._cond:
            while True:  # one pass per wake-up
                now = time.monotonic()
                self._flush_due(now)
                due = self._flusher_due = self._next_due(now)  # later than now
                self._cond.wait(None if due is None else due - now)

    def _next_due(self, now: float) -> float | None:
        """When the flusher must look next: a slot with text is due an interval after its
        last batch; an emptied slot of a running request too, if that is still to come (a
        fast stream refills it by then, and the flusher needs no notify to be there)."""
        dues = [
            due
            for slot in self._pending.values()
            if (due := slot.last_sent + self._interval) > now or not slot.empty()
        ]
        return min(dues) if dues else None

    def _flush_due(self, now: float) -> None:
        for request_id, slot in self._pending.items():
            if not slot.empty() and now - slot.last_sent >= self._interval:
                self._write(slot.take(request_id, now))


def error_event(request_id: Any, exc: BaseException) -> dict[str, Any]:
    """The `error` event for an exception: EngineFailure in its words, others as internal."""
    if isinstance(exc, EngineFailure):
        return exc.to_event(request_id) | {"detail": exc.detail}
    if is_out_of_memory(exc):
        return {"event": "error", "id": request_id, "kind": "out_of_memory",
                "message": "The engine ran out of memory: close other programs, choose a "
                "smaller context or model, or raise the engine's memory limit.",
                "detail": f"{type(exc).__name__}: {exc}"}  # fmt: skip
    return {
        "event": "error",
        "id": request_id,
        "kind": "internal",
        "message": str(exc) or repr(exc),
    }


@dataclass
class _Running:
    """A generation in progress: its request id, its flags and its thread."""

    request_id: str
    control: GenerationControl
    thread: threading.Thread


class Host:
    """The command loop: one engine, at most one generation and one load at a time."""

    def __init__(self, writer: EventWriter) -> None:
        self.writer = writer
        self.engine: Any = None
        self._lock = threading.Lock()
        self._generation: _Running | None = None
        self._job: threading.Thread | None = None  # a load or unload in progress
        self._job_kind = ""

    # -- the loop ------------------------------------------------------------------------
    def handle(self, cmd: dict[str, Any]) -> bool:
        """Run one command; return False to stop the loop. Never blocks on a model."""
        kind = cmd.get("cmd")
        try:
            if kind == "shutdown":
                self.shutdown()
                return False
            handler = self._handlers().get(kind)  # type: ignore[arg-type]
            if handler is None:
                raise EngineFailure("bad_request", f"Unknown command {kind!r}.")
            handler(cmd)
        except Exception as exc:  # noqa: BLE001 - reported, the loop lives on
            self.writer.send(error_event(cmd.get("id"), exc))
        return True

    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], None]]:
        return {
            "load": lambda cmd: self._start_job(cmd, "loading a model", self._load),
            "unload": lambda cmd: self._start_job(cmd, "unloading the model", self._unload),
            "chat": self._chat,
            "cancel": lambda cmd: self._flag(cmd, "cancelled"),
            "answer_now": lambda cmd: self._flag(cmd, "answer_now"),
            "ping": self._ping,
        }

    @property
    def state(self) -> str:
        """What the engine does now: "loading", "unloading", "generating" or "idle"."""
        with self._lock:
            if self._job is not None:
                return self._job_kind.split()[0]
            return "generating" if self._generation is not None else "idle"

    def _ping(self, cmd: dict[str, Any]) -> None:
        state = self.state
        self.writer.send(
            {
                "event": "pong",
                "id": cmd.get("id"),
                "rss_bytes": process_rss(),
                "busy": state != "idle",
                "state": state,
            }
        )

    def _flag(self, cmd: dict[str, Any], flag: str) -> None:
        """Set cancel / answer_now on the generation with this id (others are ignored)."""
        with self._lock:
            running = self._generation
        if running is not None and cmd.get("id") == running.request_id:
            setattr(running.control, flag, True)

    # -- load / unload on the job thread -------------------------------------------------
    def _start_job(
        self, cmd: dict[str, Any], what: str, work: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> None:
        with self._lock:
            if self._job is not None:
                raise EngineFailure(
                    "bad_request", f"The engine is still {self._job_kind}: wait for it first."
                )
            self._job_kind = what
            self._job = threading.Thread(
                target=self._run_job, args=(cmd, work), name="job", daemon=True
            )
            self._job.start()

    def _run_job(
        self, cmd: dict[str, Any], work: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> None:
        try:
            self._stop_generation()
            reply = work(cmd)
        except BaseException as exc:  # noqa: BLE001 - reported in words
            reply = error_event(cmd.get("id"), exc)
        with self._lock:
            self._job = None  # cleared first, so the client's next command is accepted
        self.writer.send(reply)

    def _load(self, cmd: dict[str, Any]) -> dict[str, Any]:
        path = cmd.get("path")
        if not isinstance(path, str) or not path:
            raise EngineFailure("bad_request", "No model file was given.")
        engine_name = cmd.get("engine") or "llama_cpp"
        if self.engine is None or self.engine.name != engine_name:
            if self.engine is not None:
                self.engine.unload()
                self.engine = None
            self.engine = make_engine(engine_name)
        opts = {k: v for k, v in cmd.items() if k not in ("cmd", "id", "path", "engine")}
        info = self.engine.load(path, **opts)
        return {"event": "loaded", "id": cmd.get("id"), "info": info}

    def _unload(self, cmd: dict[str, Any]) -> dict[str, Any]:
        if self.engine is not None:
            self.engine.unload()
        return {"event": "unloaded", "id": cmd.get("id"), "rss_bytes": process_rss()}

    # -- chat on the generation thread ---------------------------------------------------
    def _chat(self, cmd: dict[str, Any]) -> None:
        request_id = cmd.get("id")
        if not isinstance(request_id, str) or not request_id:
            raise EngineFailure("bad_request", "A chat needs an id.")
        with self._lock:
            if self._generation is not None:
                raise EngineFailure(
                    "bad_request", "The engine is still answering another message: stop it first."
                )
            if self._job is not None:
                raise EngineFailure("bad_request", f"The engine is {self._job_kind}: wait for it.")
            if self.engine is None or not self.engine.info:
                raise EngineFailure("bad_request", "No model is loaded: load one first.")
            control = GenerationControl()
            thread = threading.Thread(
                target=self._generate, args=(cmd, request_id, control), name="generate", daemon=True
            )
            self._generation = _Running(request_id, control, thread)
            thread.start()

    def _generate(self, cmd: dict[str, Any], request_id: str, control: GenerationControl) -> None:
        emit_parts = functools.partial(self.writer.parts, request_id)
        try:
            stats = dict(self.engine.generate(cmd, control, self.writer.send, emit_parts))
            final = {"event": "done", "id": request_id, "raw": stats.pop("raw", ""), "stats": stats}
        except BaseException as exc:  # noqa: BLE001 - reported, the process lives on
            final = error_event(request_id, exc)
        with self._lock:
            self._generation = None  # cleared first, so the next chat is accepted
        self.writer.finish(request_id, final)

    def _stop_generation(self, timeout_s: float | None = None) -> bool:
        """Cancel the running generation and wait for its thread; False if it is still on."""
        with self._lock:
            running = self._generation
        if running is None:
            return True
        running.control.cancelled = True
        running.thread.join(timeout_s)
        return not running.thread.is_alive()

    def shutdown(self) -> None:
        """Stop the generation, and free the model unless a load is still inside it."""
        self._stop_generation(SHUTDOWN_WAIT_S)
        with self._lock:
            job = self._job
        if job is None and self.engine is not None:
            self.engine.unload()


def make_engine(name: str) -> Any:
    """Import and build the named engine; a missing library is a clear error."""
    target = ENGINES.get(name)
    if target is None:
        raise EngineFailure("bad_request", f"There is no engine called {name!r}.")
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except (ImportError, MemoryError) as exc:
        if is_out_of_memory(exc):  # a library could not be mapped (a memory limit, issue 20)
            raise EngineFailure(
                "out_of_memory",
                f"The engine ran out of memory starting its {name} engine: close other "
                "programs, or raise the engine's memory limit.",
                str(exc) or repr(exc),
            ) from exc
        missing = getattr(exc, "name", None) or "a library"
        raise EngineFailure(
            "bad_request", f"The {name} engine is not installed here ({missing} is missing)."
        ) from exc
    return getattr(module, class_name)()


def protocol_channel() -> TextIO:
    """Keep the real stdout for events; point fd 1 at stderr so native prints can't break it."""
    proto_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(proto_fd, "w", encoding="utf-8", buffering=1)


def read_command(line: str) -> dict[str, Any] | None:
    """One command line parsed, or None when it is not a JSON object."""
    try:
        cmd = json.loads(line)
    except ValueError:
        return None
    return cmd if isinstance(cmd, dict) else None


def serve(host: Host, lines: Any) -> None:
    """Run the command loop until `shutdown` or the end of input (the client went away)."""
    for line in lines:
        line = line.strip()
        if not line:
            continue
        cmd = read_command(line)
        if cmd is None:
            host.writer.send(
                {"event": "error", "id": None, "kind": "bad_request", "message": "bad command"}
            )
            continue
        if not host.handle(cmd):
            return
    host.shutdown()


def main() -> int:
    writer = EventWriter(protocol_channel())
    host = Host(writer)
    writer.send({"event": "ready", "pid": os.getpid(), "protocol": PROTOCOL_VERSION})
    serve(host, sys.stdin)
    sys.stderr.flush()
    # A load may still be inside native code: leave without waiting for that thread.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
