"""The engine client: starts the engine process, sends commands, hands back events.

No Qt here. A reader thread parses the child's JSON lines; `load` blocks until the model is
loaded or fails; `chat` returns a `Generation`, an iterator of `StreamEvent` values already
split into thinking and answer. If the child dies (abort, segfault, kill) every waiter
gets an `engine_crashed` error with the exit status and the last lines of its stderr, and
the next command starts a fresh child.
"""

from __future__ import annotations

import collections
import itertools
import json
import logging
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

from app.core.engine.events import StreamDone, StreamError, StreamEvent, StreamStarted, TextDelta
from app.core.reasoning import ReasoningSplitter
from backends.base import SECRET_ENV_VARS
from backends.util import describe_exit

log = logging.getLogger(__name__)

STDERR_TAIL_LINES = 40
_END = object()


class EngineError(Exception):
    """A failure in words: `kind` is one of backends.base.ERROR_KINDS."""

    def __init__(self, kind: str, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.detail = detail


def host_command() -> list[str]:
    """How to start the engine process: the frozen app runs itself with `--engine-host`."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "--engine-host"]
    return [sys.executable, "-m", "backends.host"]


def child_environment() -> dict[str, str]:
    """The parent's environment without secrets: the engine reads untrusted files."""
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV_VARS}
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("GGML_NO_BACKTRACE", "1")  # else ggml attaches gdb on abort: slow, noisy
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


class Generation:
    """One streaming answer: iterate it for events; cancel() and answer_now() from any thread."""

    def __init__(self, client: EngineClient, request_id: str) -> None:
        self.client = client
        self.request_id = request_id
        self.events: queue.Queue[Any] = queue.Queue()
        self.splitter = ReasoningSplitter()
        self.finished = False

    def cancel(self) -> None:
        if not self.finished:
            self.client._send({"cmd": "cancel", "id": self.request_id}, quiet=True)

    def answer_now(self) -> None:
        if not self.finished:
            self.client._send({"cmd": "answer_now", "id": self.request_id}, quiet=True)

    def __iter__(self) -> Iterator[StreamEvent]:
        while True:
            raw = self.events.get()
            if raw is _END:
                return
            for event in self._convert(raw):
                yield event
                if isinstance(event, StreamDone | StreamError):
                    self.finished = True
                    return

    def _convert(self, raw: dict[str, Any]) -> list[StreamEvent]:
        kind = raw.get("event")
        if kind == "done":
            tail = self.splitter.finish()  # text held back as a possible partial tag
            held = [TextDelta(self.request_id, tail.thinking, tail.answer, "", 0)] if tail else []
            return [*held, self._done(raw.get("stats", {}))]
        event = self._one(raw, kind)
        return [event] if event is not None else []

    def _done(self, s: dict[str, Any]) -> StreamDone:
        known = {f for f in StreamDone.__dataclass_fields__}
        return StreamDone(
            self.request_id,
            stop_reason=s.get("stop_reason", "eos"),
            completion_tokens=int(s.get("completion_tokens", 0)),
            prompt_tokens=int(s.get("prompt_tokens", 0)),
            ttft_s=s.get("ttft_s"),
            decode_tps=s.get("decode_tps"),
            elapsed_s=float(s.get("elapsed_s", 0.0)),
            thinking_tokens=int(s.get("thinking_tokens", 0)),
            ended_in_thinking=bool(s.get("ended_in_thinking", False)),
            extra={k: v for k, v in s.items() if k not in known},
        )

    def _one(self, raw: dict[str, Any], kind: Any) -> StreamEvent | None:
        rid = self.request_id
        if kind == "started":
            self.splitter = ReasoningSplitter(
                bool(raw.get("thinking_open")), raw.get("think_start") or "<think>"
            )
            return StreamStarted(rid, int(raw.get("prompt_tokens", 0)), bool(raw["thinking_open"]))
        if kind == "delta":
            text = raw.get("text", "")
            split = self.splitter.feed(text)
            return TextDelta(rid, split.thinking, split.answer, text, int(raw.get("tokens", 0)))
        if kind == "error":
            return StreamError(rid, raw.get("kind", "internal"), raw.get("message", ""),
                               raw.get("detail", ""))  # fmt: skip
        return None


class EngineClient:
    """Owns one engine process (started on first use) and the model loaded in it."""

    def __init__(self, command: list[str] | None = None, load_timeout_s: float = 600.0) -> None:
        self.command = command or host_command()
        self.load_timeout_s = load_timeout_s
        self.proc: subprocess.Popen[str] | None = None
        self.model_info: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._control: queue.Queue[dict[str, Any]] = queue.Queue()
        self._generation: Generation | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._ids = itertools.count(1)
        self._stderr_thread = threading.Thread()

    # -- process -------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    def start(self) -> None:
        """Start the engine process if it is not running."""
        if self.proc is not None and self.proc.poll() is None:
            return
        self._stderr.clear()
        self._control = queue.Queue()
        self.model_info = None
        self.proc = subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            env=child_environment(),
        )
        proc = self.proc
        threading.Thread(target=self._read_events, args=(proc,), daemon=True).start()
        self._stderr_thread = threading.Thread(target=self._read_stderr, args=(proc,), daemon=True)
        self._stderr_thread.start()
        ready = self._wait_control(30.0)
        if ready.get("event") != "ready":
            raise EngineError(ready.get("kind", "engine_crashed"), ready.get("message", ""))

    def close(self, timeout_s: float = 5.0) -> None:
        """Ask the engine to shut down; kill it if it does not."""
        proc, self.proc = self.proc, None
        self.model_info = None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                proc.stdin.write(json.dumps({"cmd": "shutdown"}) + "\n")  # type: ignore[union-attr]
                proc.stdin.flush()  # type: ignore[union-attr]
                proc.wait(timeout_s)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()

    def restart(self) -> None:
        self.close()
        self.start()

    # -- commands ------------------------------------------------------------------------
    def load(self, path: str, n_ctx: int | None = None, n_gpu_layers: int = -1,
             n_threads: int | None = None, **opts: Any) -> dict[str, Any]:  # fmt: skip
        """Load a model (replacing any loaded one); raise EngineError in words on failure."""
        self.start()
        cmd = {"cmd": "load", "path": os.fspath(path), "n_ctx": n_ctx,
               "n_gpu_layers": n_gpu_layers, "n_threads": n_threads, **opts}  # fmt: skip
        self._send(cmd)
        reply = self._wait_control(self.load_timeout_s)
        if reply.get("event") != "loaded":
            raise EngineError(reply.get("kind", "internal"), reply.get("message", ""),
                              reply.get("detail", ""))  # fmt: skip
        self.model_info = reply["info"]
        return self.model_info

    def unload(self) -> int:
        """Free the model's memory; returns the engine process's resident bytes after."""
        if self.pid is None:
            return 0
        self._send({"cmd": "unload"})
        reply = self._wait_control(60.0)
        self.model_info = None
        return int(reply.get("rss_bytes", 0))

    def chat(self, messages: list[dict[str, str]], temperature: float = 0.6, top_p: float = 0.95,
             max_tokens: int = 4096, thinking_budget: int | None = None,
             seed: int | None = None) -> Generation:  # fmt: skip
        """Start an answer; iterate the returned Generation for events."""
        gen = Generation(self, f"r{next(self._ids)}")
        if self.pid is None or self.model_info is None:
            gen.events.put(
                {"event": "error", "kind": "bad_request", "message": "No model is loaded."}
            )
            return gen
        self._generation = gen
        params = {"temperature": temperature, "top_p": top_p, "max_tokens": max_tokens,
                  "thinking_budget": thinking_budget, "seed": seed}  # fmt: skip
        self._send({"cmd": "chat", "id": gen.request_id, "messages": messages, "params": params})
        return gen

    def _send(self, cmd: dict[str, Any], quiet: bool = False) -> None:
        proc = self.proc
        try:
            if proc is None or proc.poll() is not None:
                raise BrokenPipeError
            with self._lock:
                proc.stdin.write(json.dumps(cmd) + "\n")  # type: ignore[union-attr]
                proc.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError) as exc:
            if not quiet:
                raise EngineError("engine_crashed", self._crash_message(proc)) from exc

    def _wait_control(self, timeout_s: float) -> dict[str, Any]:
        try:
            return self._control.get(timeout=timeout_s)
        except queue.Empty:
            return {"event": "error", "kind": "internal",
                    "message": f"The engine did not answer within {timeout_s:.0f} s."}  # fmt: skip

    # -- reader threads ------------------------------------------------------------------
    def _read_events(self, proc: subprocess.Popen[str]) -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            try:
                event = json.loads(line)
            except ValueError:
                log.warning("engine sent a non-JSON line: %r", line[:200])
                continue
            gen = self._generation
            if event.get("id") is not None and gen is not None and event["id"] == gen.request_id:
                gen.events.put(event)
                if event.get("event") in ("done", "error"):
                    self._generation = None
            else:
                self._control.put(event)
        proc.wait()
        self._on_exit(proc)

    def _read_stderr(self, proc: subprocess.Popen[str]) -> None:
        for line in proc.stderr:  # type: ignore[union-attr]
            self._stderr.append(line.rstrip("\n"))
            log.debug("engine: %s", line.rstrip())

    def _on_exit(self, proc: subprocess.Popen[str]) -> None:
        if proc.returncode == 0 and self.proc is not proc:
            return  # a clean shutdown we asked for
        self._stderr_thread.join(1.0)
        message = self._crash_message(proc)
        detail = "\n".join(self._stderr)
        crash = {"event": "error", "kind": "engine_crashed", "message": message, "detail": detail}
        if self.proc is proc:
            self.model_info = None
        gen, self._generation = self._generation, None
        if gen is not None:
            gen.events.put(crash)
        self._control.put(crash)

    def _crash_message(self, proc: subprocess.Popen[str] | None) -> str:
        if proc is None:
            return "The engine is not running: load a model again."
        if proc.poll() is None:
            proc.wait(5)
        return (
            f"The engine process {describe_exit(proc.returncode)}. "
            "Ponder is fine; load the model again, or choose another model."
        )

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
