"""The engine client: starts the engine process, sends commands, matches replies to them.

No Qt here. Every command carries an id and its reply is routed to the waiter of that id;
a reply nobody waits for is dropped. One `_EngineProcess` holds everything of one child
(pipes, reader threads, waiters, stderr tail), so a restarted engine never receives the old
one's events. `load` blocks until the model is loaded or fails; `chat` returns a
`Generation` that can be read with a timeout. The engine splits thinking from answer itself:
the client only turns its events into `StreamEvent` values.

Failures reach every waiter in words: a dead child is `engine_crashed` (exit status and the
last lines of its stderr); a child that stops answering while it works (SIGSTOP, a stuck
driver) is noticed by a watchdog that pings it after `watchdog_s` of silence and kills it
when no pong comes: `engine_hung`, and a fresh engine is started. The child itself, its
threads and the watchdog live in app/core/engine/process.py.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

from app.core.engine.events import StreamDone, StreamError, StreamEvent, StreamStarted, TextDelta
from app.core.engine.process import (
    KEPT,
    START_TIMEOUT_S,
    STILL_ANSWERING,
    STOP_GENERATION_S,
    UNLOAD_TIMEOUT_S,
    EngineError,
    _EngineProcess,
    _Timing,
    child_environment,
    host_command,
    hung_message,
    refuse_special_file,
)
from backends.base import PROTOCOL_VERSION

__all__ = [
    "STILL_ANSWERING",
    "EngineClient",
    "EngineError",
    "Generation",
    "child_environment",
    "host_command",
]

log = logging.getLogger(__name__)


class Generation:
    """One streaming answer, read with `next_event(timeout_s)` or by iterating.

    `cancel()` and `answer_now()` may be called from any thread.
    """

    def __init__(
        self,
        request_id: str,
        events: queue.Queue[dict[str, Any]],
        process: _EngineProcess | None = None,
    ) -> None:
        self.request_id = request_id
        self.finished = False
        self._events = events
        self._process = process

    @classmethod
    def refused(cls, request_id: str, kind: str, message: str) -> Generation:
        """A generation that never reached the engine: its only event is the refusal."""
        events: queue.Queue[dict[str, Any]] = queue.Queue()
        events.put({"event": "error", "id": request_id, "kind": kind, "message": message})
        return cls(request_id, events)

    def cancel(self) -> None:
        self._command("cancel")

    def answer_now(self) -> None:
        self._command("answer_now")

    def _command(self, cmd: str) -> None:
        if not self.finished and self._process is not None:
            self._process.send_soon({"cmd": cmd, "id": self.request_id})

    def next_event(self, timeout_s: float | None = None) -> StreamEvent | None:
        """The next event, or None when nothing arrived in time (or the stream has ended)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self.finished:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                raw = self._events.get(timeout=remaining)
            except queue.Empty:
                return None
            event = convert_event(self.request_id, raw)
            if event is not None:
                self.finished = isinstance(event, StreamDone | StreamError)
                return event
        return None

    def __iter__(self) -> Iterator[StreamEvent]:
        """Every event until StreamDone or StreamError (the watchdog bounds every wait)."""
        while not self.finished:
            event = self.next_event(None)
            if event is not None:
                yield event


def convert_event(request_id: str, raw: dict[str, Any]) -> StreamEvent | None:
    """A protocol event as the stream value it stands for (None for unknown events)."""
    kind = raw.get("event")
    if kind == "started":
        return StreamStarted(
            request_id, int(raw.get("prompt_tokens", 0)), bool(raw.get("thinking_open"))
        )
    if kind == "delta":
        return TextDelta(
            request_id,
            raw.get("thinking", ""),
            raw.get("answer", ""),
            int(raw.get("thinking_tokens", 0)),
            int(raw.get("answer_tokens", 0)),
        )
    if kind == "done":
        return done_event(request_id, raw)
    if kind == "error":
        return StreamError(
            request_id, raw.get("kind", "internal"), raw.get("message", ""), raw.get("detail", "")
        )
    return None


def done_event(request_id: str, raw: dict[str, Any]) -> StreamDone:
    """The `done` event's stats as a StreamDone; unknown stats go to `extra`."""
    s = raw.get("stats") or {}
    known = set(StreamDone.__dataclass_fields__)
    return StreamDone(
        request_id,
        stop_reason=s.get("stop_reason", "eos"),
        completion_tokens=int(s.get("completion_tokens", 0)),
        prompt_tokens=int(s.get("prompt_tokens", 0)),
        ttft_s=s.get("ttft_s"),
        decode_tps=s.get("decode_tps"),
        elapsed_s=float(s.get("elapsed_s", 0.0)),
        thinking_tokens=int(s.get("thinking_tokens", 0)),
        ended_in_thinking=bool(s.get("ended_in_thinking", False)),
        answer_tokens=int(s.get("answer_tokens", 0)),
        thinking_ended_by=s.get("thinking_ended_by"),
        raw=str(raw.get("raw", "")),
        extra={k: v for k, v in s.items() if k not in known},
    )


class EngineClient:
    """Owns one engine process at a time (started on first use) and the model loaded in it."""

    def __init__(
        self,
        command: list[str] | None = None,
        load_timeout_s: float = 600.0,
        watchdog_s: float = 15.0,
        ping_timeout_s: float = 5.0,
    ) -> None:
        self.command = command or host_command()
        self.load_timeout_s = load_timeout_s
        self.model_info: dict[str, Any] | None = None
        self._timing = _Timing(watchdog_s, ping_timeout_s)
        self._lock = threading.RLock()
        self._process: _EngineProcess | None = None
        self._generation: Generation | None = None
        self._ids = itertools.count(1)

    # -- settings and state --------------------------------------------------------------
    @property
    def watchdog_s(self) -> float:
        """Seconds of silence during a load or an answer before the engine is pinged."""
        return self._timing.watchdog_s

    @watchdog_s.setter
    def watchdog_s(self, value: float) -> None:
        self._timing.watchdog_s = float(value)

    @property
    def ping_timeout_s(self) -> float:
        """Seconds the watchdog waits for a pong before it declares the engine hung."""
        return self._timing.ping_timeout_s

    @ping_timeout_s.setter
    def ping_timeout_s(self, value: float) -> None:
        self._timing.ping_timeout_s = float(value)

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.proc.pid if process is not None and process.alive else None

    @property
    def stderr_tail(self) -> list[str]:
        """The last lines the current (or last crashed) engine wrote to its stderr."""
        process = self._process
        return list(process.stderr_tail) if process is not None else []

    @property
    def active(self) -> Generation | None:
        """The generation the engine is still working on, or None."""
        gen, process = self._generation, self._process
        if gen is None or gen.finished or process is None or gen._process is not process:
            return None
        return gen if process.waiting_for(gen.request_id) else None

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    # -- process -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the engine process if it is not running."""
        with self._lock:
            self._start_locked()

    def _start_locked(self) -> _EngineProcess:
        process = self._process
        if process is not None and process.alive:
            return process
        self.model_info = None
        try:
            process = _EngineProcess(self.command, self._timing, self._on_process_exit)
        except OSError as exc:
            raise EngineError("engine_crashed", f"The engine could not start: {exc}.") from exc
        self._process = process
        problem = _start_problem(process.wait_ready(START_TIMEOUT_S))
        if problem is not None:
            process.stop(0)
            problem.detail = "\n".join(process.stderr_tail)
            raise problem
        return process

    def close(self, timeout_s: float = 5.0) -> None:
        """Ask the engine to shut down; kill it if it has not within `timeout_s`."""
        with self._lock:
            process, self._process = self._process, None
            self.model_info = None
            self._generation = None
        if process is not None:
            process.stop(timeout_s)

    def restart(self) -> None:
        self.close()
        self.start()

    def _on_process_exit(self, process: _EngineProcess) -> None:
        """Runs on the ended child's reader thread: a hung engine is replaced at once."""
        with self._lock:
            if self._process is not process:
                return  # closed or replaced already: nothing of ours changes
            self.model_info = None
            if process.kill_reason is None:
                return  # a crash: the next command starts a fresh engine
            try:
                self._start_locked()
            except EngineError as exc:
                log.warning("could not restart the engine: %s", exc.message)

    def _replace(self, process: _EngineProcess) -> None:
        """After killing `process`: make sure a fresh engine runs, unless one already does."""
        process.dead.wait(5.0)
        with self._lock:
            if self._process is process:
                self._process = None
            self._start_locked()

    # -- commands ------------------------------------------------------------------------
    def load(self, path: str, n_ctx: int | None = None, n_gpu_layers: int = -1,
             n_threads: int | None = None, **opts: Any) -> dict[str, Any]:  # fmt: skip
        """Load a model (replacing any loaded one); raise EngineError in words on failure.

        An answer still streaming is stopped first. A load that takes longer than
        `load_timeout_s` kills the engine and starts a fresh one, so the next load is clean.
        """
        refuse_special_file(os.fspath(path))
        with self._lock:
            process = self._start_locked()
        self._stop_active(process)
        request_id = self._next_id("load-")
        cmd = {"cmd": "load", "id": request_id, "path": os.fspath(path), "n_ctx": n_ctx,
               "n_gpu_layers": n_gpu_layers, "n_threads": n_threads, **opts}  # fmt: skip
        reply = self._wait_reply(process.request(cmd, watched=True), self.load_timeout_s)
        if reply is None:
            message = (
                f"The engine did not finish loading in {self.load_timeout_s:.0f} s (the file "
                "may be on a slow or stuck disk, or not a regular file); it was restarted."
            )
            process.kill("engine_hung", message)
            self._replace(process)
            raise EngineError("engine_hung", message)
        if reply.get("event") != "loaded":
            raise _error_from(reply)
        with self._lock:
            if self._process is process:
                self.model_info = reply["info"]
        return reply["info"]

    def unload(self) -> int:
        """Free the model's memory; returns the engine process's resident bytes after."""
        process = self._process
        if process is None or not process.alive:
            self.model_info = None
            return 0
        self._stop_active(process)
        cmd = {"cmd": "unload", "id": self._next_id("unload-")}
        reply = self._wait_reply(process.request(cmd, watched=True), UNLOAD_TIMEOUT_S)
        self.model_info = None
        if reply is None or reply.get("event") != "unloaded":
            return 0
        return int(reply.get("rss_bytes", 0))

    def ping(self, timeout_s: float = 5.0) -> dict[str, Any]:
        """Ask the engine how it is: {rss_bytes, busy, state}; EngineError when it is silent."""
        with self._lock:
            process = self._start_locked()
        request_id = self._next_id("ping-")
        reply = self._wait_reply(process.request({"cmd": "ping", "id": request_id}),
                                 timeout_s)  # fmt: skip
        if reply is None:
            process.forget(request_id)
            raise EngineError(
                "engine_hung", f"The engine did not answer a ping within {timeout_s:g} s."
            )
        if reply.get("event") != "pong":
            raise _error_from(reply)
        return {k: v for k, v in reply.items() if k not in ("event", "id")}

    def kill_if_hung(self, timeout_s: float = 2.0) -> bool:
        """Ping the engine now instead of waiting for the watchdog's silence; when no pong
        comes within `timeout_s`, kill it as the watchdog would (`engine_hung`: waiters hear
        it, an answer that its text is kept; a fresh engine starts). True if it was hung.

        For Reload: a stopped (SIGSTOP) engine is replaced at once, a working one is left
        alone. Safe from any thread."""
        process = self._process
        if process is None or not process.alive:
            return False
        heard = process.quiet_since
        key = self._next_id("probe-")
        pong = process.register(key)
        process.send_soon({"cmd": "ping", "id": key})
        try:
            pong.get(timeout=timeout_s)
            return False
        except queue.Empty:
            if process.quiet_since > heard:
                return False
            said = hung_message(time.monotonic() - heard)
            process.kill("engine_hung", said + ".", f"{said}; {KEPT}")
            return True
        finally:
            process.forget(key)

    def chat(self, messages: list[dict[str, str]], temperature: float = 0.6, top_p: float = 0.95,
             max_tokens: int | None = None, thinking_budget: int | None = None,
             answer_reserve: int = 1024, seed: int | None = None,
             ignore_eos: bool = False, thinking: bool = True) -> Generation:  # fmt: skip
        """Start an answer; read the returned Generation for its events.

        `thinking=False` answers without thinking where the model's chat template has a
        switch (the load info's `thinking_switch`, e.g. Qwen3); other models think as usual.
        While another answer streams, the new one is refused in words (its only event is a
        StreamError) and the first is not touched.
        """
        params = {"temperature": temperature, "top_p": top_p, "max_tokens": max_tokens,
                  "thinking_budget": thinking_budget, "answer_reserve": answer_reserve,
                  "seed": seed}  # fmt: skip
        if ignore_eos:  # benchmarks only (bench/long_reasoning.py)
            params["ignore_eos"] = True
        if not thinking:
            params["thinking"] = False
        with self._lock:
            request_id = self._next_id("chat-")
            if self.active is not None:
                return Generation.refused(request_id, "bad_request", STILL_ANSWERING)
            process = self._process
            if process is None or not process.alive or self.model_info is None:
                return Generation.refused(
                    request_id, "bad_request", "No model is loaded: load one first."
                )
            cmd = {"cmd": "chat", "id": request_id, "messages": messages, "params": params}
            events = process.register(request_id, watched=True, is_chat=True)
            self._generation = Generation(request_id, events, process)
        process.send(cmd)
        return self._generation

    def _stop_active(self, process: _EngineProcess) -> None:
        """Cancel a streaming answer and wait (bounded) for its end; its reader gets `done`."""
        gen = self.active
        if gen is not None:
            gen.cancel()
            if not process.wait_ended(gen.request_id, STOP_GENERATION_S):
                log.warning("the answer %s did not stop in time", gen.request_id)

    @staticmethod
    def _wait_reply(events: queue.Queue, timeout_s: float) -> dict[str, Any] | None:
        """The command's final reply, or None if none came in time (the watchdog still runs)."""
        try:
            return events.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _start_problem(ready: dict[str, Any]) -> EngineError | None:
    """Why a started engine cannot be used (no `ready`, another protocol), or None."""
    if ready.get("event") != "ready":
        return _error_from(ready)
    if ready.get("protocol") != PROTOCOL_VERSION:
        return EngineError(
            "internal",
            f"The engine speaks protocol {ready.get('protocol')}, this Ponder "
            f"{PROTOCOL_VERSION}: install Ponder again.",
        )
    return None


def _error_from(reply: dict[str, Any]) -> EngineError:
    return EngineError(
        reply.get("kind", "internal"), reply.get("message", ""), reply.get("detail", "")
    )
