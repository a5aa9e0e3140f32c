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
when no pong comes: `engine_hung`, and a fresh engine is started.
"""

from __future__ import annotations

import collections
import itertools
import json
import logging
import os
import queue
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from app.core.engine.events import StreamDone, StreamError, StreamEvent, StreamStarted, TextDelta
from backends.base import PROTOCOL_VERSION, SECRET_ENV_VARS
from backends.util import describe_exit

log = logging.getLogger(__name__)

STDERR_TAIL_LINES = 40
START_TIMEOUT_S = 30.0  # from spawning the engine to its `ready` event
STOP_GENERATION_S = 10.0  # how long a load waits for a cancelled answer's `done`
UNLOAD_TIMEOUT_S = 60.0
READY = "\0ready"  # waiter key of the `ready` event, the only event without an id
NOT_FINAL = frozenset({"started", "delta"})  # every other reply ends its command
KEPT = "your partial answer is kept."
STILL_ANSWERING = "Ponder is still answering the previous message: stop it first."

# The environment the engine gets: an allow-list, because it reads untrusted files and must
# never see the user's tokens and keys (issue 20). Names are compared upper-cased (Windows).
ENV_NAMES = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "USERNAME", "LANG", "LANGUAGE", "TZ",
        "TMPDIR", "TMP", "TEMP", "HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE",
        "CUDA_VISIBLE_DEVICES", "CUDA_PATH", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES",
        "GPU_DEVICE_ORDINAL", "HSA_OVERRIDE_GFX_VERSION", "VK_ICD_FILENAMES",
        "LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH", "DYLD_FALLBACK_LIBRARY_PATH",
        "SSL_CERT_FILE", "SSL_CERT_DIR", "VIRTUAL_ENV",
        # Windows: the system needs these to start a process and find its DLLs
        "SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "COMSPEC", "PATHEXT", "USERPROFILE",
        "APPDATA", "LOCALAPPDATA", "PROGRAMDATA", "PROGRAMFILES", "PROGRAMFILES(X86)",
        "NUMBER_OF_PROCESSORS", "PROCESSOR_ARCHITECTURE",
    }
)  # fmt: skip
ENV_PREFIXES = ("LC_", "XDG_", "GGML_", "LLAMA_", "OMP_", "KMP_", "OPENBLAS_", "MKL_", "MLX_",
                "MTL_", "CUDA_", "HIP_")  # fmt: skip
# Even an allowed prefix never passes a name that looks like a credential.
ENV_SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "API_KEY", "CREDENTIAL", "AUTH")


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


def engine_may_see(name: str) -> bool:
    """Whether an environment variable passes to the engine process (the allow-list)."""
    upper = name.upper()
    if upper in SECRET_ENV_VARS or any(word in upper for word in ENV_SECRET_WORDS):
        return False
    return upper in ENV_NAMES or upper.startswith(ENV_PREFIXES)


def child_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The engine's environment: only what it needs to run, never the user's secrets."""
    source = os.environ if environ is None else environ
    env = {k: v for k, v in source.items() if engine_may_see(k)}
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("GGML_NO_BACKTRACE", "1")  # else ggml attaches gdb on abort: slow, noisy
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, source.get("PYTHONPATH")) if p)
    return env


@dataclass
class _Timing:
    """The watchdog's settings, shared by the client and its processes."""

    watchdog_s: float = 15.0  # silence while working before the engine is pinged
    ping_timeout_s: float = 5.0  # no pong within this: the engine is hung


@dataclass
class _Waiter:
    """Where the replies to one command go."""

    events: queue.Queue[dict[str, Any]]
    ended: threading.Event
    watched: bool  # a load, unload or chat: the watchdog minds its silence
    is_chat: bool


class _EngineProcess:
    """One engine child: its pipes, reader threads, watchdog, waiters and stderr tail.

    Nothing of it is reused: when the child ends, every waiter gets the reason and the
    object is dropped, so its late events can never reach a later process's waiters.
    """

    def __init__(
        self, command: list[str], timing: _Timing, on_exit: Callable[[_EngineProcess], None]
    ) -> None:
        self.timing = timing
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self.exit_event: dict[str, Any] | None = None  # the reason, once the child ended
        # (kind, message, message to an answer) when the client killed the child
        self.kill_reason: tuple[str, str, str] | None = None
        self.closing = False  # we asked it to stop: its end is no crash
        self.dead = threading.Event()
        # the last line from the child, or the last command the watchdog minds, if later
        self.quiet_since = time.monotonic()
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._waiters: dict[str, _Waiter] = {}
        self._probes = itertools.count(1)
        self._ready = self.register(READY)
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            env=child_environment(),
        )
        self._stderr_thread = self._thread(self._read_stderr, "engine-stderr")
        self._thread(self._read_events, "engine-events")
        self._thread(self._watch, "engine-watchdog")

    def _thread(self, target: Callable[[], None], name: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=f"{name}-{self.proc.pid}", daemon=True)
        thread.start()
        return thread

    @property
    def alive(self) -> bool:
        return not self.dead.is_set() and self.proc.poll() is None

    def wait_ready(self, timeout_s: float) -> dict[str, Any]:
        """The `ready` event, or the reason the child could not start."""
        try:
            return self._ready.get(timeout=timeout_s)
        except queue.Empty:
            message = f"The engine did not start within {timeout_s:.0f} s."
            return {"event": "error", "kind": "engine_hung", "message": message}

    # -- waiters -------------------------------------------------------------------------
    def register(self, key: str, watched: bool = False, is_chat: bool = False) -> queue.Queue:
        """A queue for the replies to `key`; it gets the exit reason if the child is gone."""
        waiter = _Waiter(queue.Queue(), threading.Event(), watched, is_chat)
        with self._lock:
            if self.exit_event is None:
                self._waiters[key] = waiter
                return waiter.events
        waiter.events.put(self._reason_for(waiter))
        return waiter.events

    def forget(self, key: str) -> None:
        with self._lock:
            self._waiters.pop(key, None)

    def waiting_for(self, key: str) -> bool:
        with self._lock:
            return key in self._waiters

    def wait_ended(self, key: str, timeout_s: float) -> bool:
        """Wait until the command `key` got its final reply (True) or the time is up."""
        with self._lock:
            waiter = self._waiters.get(key)
        return waiter is None or waiter.ended.wait(timeout_s)

    def request(self, cmd: dict[str, Any], watched: bool = False) -> queue.Queue:
        """Send a command and return the queue its replies arrive on."""
        events = self.register(cmd["id"], watched, is_chat=cmd.get("cmd") == "chat")
        if watched:
            self.quiet_since = time.monotonic()
        self.send(cmd)
        return events

    def send(self, cmd: dict[str, Any]) -> None:
        """Write a command; a dead child is not an error here (its waiters hear why)."""
        line = json.dumps(cmd) + "\n"
        try:
            with self._send_lock:
                self.proc.stdin.write(line)  # type: ignore[union-attr]
                self.proc.stdin.flush()  # type: ignore[union-attr]
        except (OSError, ValueError):  # broken pipe, or stdin already closed
            log.debug("engine %s did not take %s", self.proc.pid, cmd.get("cmd"))

    def send_soon(self, cmd: dict[str, Any]) -> None:
        """Send from a helper thread: a stopped child with a full pipe cannot block the caller."""
        threading.Thread(target=self.send, args=(cmd,), name="engine-send", daemon=True).start()

    # -- ending --------------------------------------------------------------------------
    def kill(self, kind: str, message: str, chat_message: str | None = None) -> None:
        """Kill the child; its waiters get (kind, message) instead of a crash report."""
        with self._lock:
            if self.kill_reason is None and not self.closing:
                self.kill_reason = (kind, message, chat_message or message)
        self.proc.kill()

    def stop(self, timeout_s: float) -> None:
        """Ask the child to shut down; kill it if it has not within `timeout_s`."""
        with self._lock:
            self.closing = True
        if self.proc.poll() is None:
            if timeout_s > 0:
                self.send_soon({"cmd": "shutdown"})
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        try:
            self.proc.wait(5.0)
        except subprocess.TimeoutExpired:  # stuck in the kernel (D state): nothing more to do
            log.warning("engine %s did not end after SIGKILL", self.proc.pid)

    def _reason_for(self, waiter: _Waiter) -> dict[str, Any]:
        """The exit event as this waiter reads it (an answer hears that its text is kept)."""
        event = dict(self.exit_event or {})
        chat_message = event.pop("chat_message", None)
        if waiter.is_chat and chat_message:
            event["message"] = chat_message
        return event

    def _describe_end(self) -> dict[str, Any]:
        if self.kill_reason is not None:
            kind, message, chat_message = self.kill_reason
        elif self.closing:
            kind = "engine_crashed"
            message = "The engine was stopped by Ponder before it finished."
            chat_message = "The engine was stopped before the answer finished; " + KEPT
        else:
            kind = "engine_crashed"
            message = crash_message(self.proc.returncode)
            chat_message = crash_message(self.proc.returncode, answer=True)
        return {"event": "error", "id": None, "kind": kind, "message": message,
                "chat_message": chat_message, "detail": "\n".join(self.stderr_tail)}  # fmt: skip

    # -- threads -------------------------------------------------------------------------
    def _read_events(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.quiet_since = time.monotonic()
            try:
                event = json.loads(line)
            except ValueError:
                log.warning("engine sent a non-JSON line: %r", line[:200])
                continue
            if isinstance(event, dict):
                self._route(event)
        self.proc.wait()
        self._stderr_thread.join(1.0)
        self._end()

    def _route(self, event: dict[str, Any]) -> None:
        key = READY if event.get("event") == "ready" else event.get("id")
        final = event.get("event") not in NOT_FINAL
        with self._lock:
            waiter = None
            if isinstance(key, str):
                waiter = self._waiters.get(key)
                if waiter is not None and final:
                    del self._waiters[key]
        if waiter is None:
            log.info("dropped a %s event for %r: nobody waits for it", event.get("event"), key)
            if event.get("event") == "error":
                log.warning("engine error without a waiter: %s", event.get("message"))
            return
        waiter.events.put(event)
        if final:
            waiter.ended.set()

    def _end(self) -> None:
        with self._lock:
            self.exit_event = self._describe_end()
            waiters = list(self._waiters.values())
            self._waiters.clear()
        for waiter in waiters:
            waiter.events.put(self._reason_for(waiter))
            waiter.ended.set()
        self.dead.set()
        self._on_exit(self)

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:  # type: ignore[union-attr]
            self.stderr_tail.append(line.rstrip("\n"))
            log.debug("engine: %s", line.rstrip())

    def _watch(self) -> None:
        """While a command works, ping the child after a silence; kill it if no pong comes."""
        while not self.dead.wait(min(0.25, self.timing.watchdog_s / 4)):
            with self._lock:
                working = any(w.watched for w in self._waiters.values())
            silent = time.monotonic() - self.quiet_since
            if working and silent >= self.timing.watchdog_s and not self._answers_ping():
                silent = time.monotonic() - self.quiet_since
                log.warning("engine %s hung: no answer for %.1f s", self.proc.pid, silent)
                said = hung_message(silent)
                self.kill("engine_hung", said + ".", f"{said}; {KEPT}")

    def _answers_ping(self) -> bool:
        key = f"watchdog-{next(self._probes)}"
        heard = self.quiet_since
        pong = self.register(key)
        self.send_soon({"cmd": "ping", "id": key})
        try:
            pong.get(timeout=self.timing.ping_timeout_s)
            return True
        except queue.Empty:
            return self.quiet_since > heard
        finally:
            self.forget(key)


def refuse_special_file(path: str) -> None:
    """A FIFO, socket or device as the model would block the engine's reader: refuse it."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return  # a URL, or missing: the engine says so in its words
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise EngineError(
            "bad_model",
            f"{os.path.basename(path)} is not a regular file (a pipe, socket or device): "
            "choose the model file itself.",
        )


def crash_message(returncode: int | None, answer: bool = False) -> str:
    """A dead engine in words: how it ended, and what to do (`answer`: said to an answer,
    which hears that its text so far is kept)."""
    if answer:
        return (
            f"The engine process {describe_exit(returncode)}. The answer so far is kept; "
            "reload the engine to continue, or choose another model."
        )
    return (
        f"The engine process {describe_exit(returncode)}. "
        "Ponder is fine; load the model again, or choose another model."
    )


def hung_message(silent_s: float) -> str:
    """The watchdog's verdict (the waiter adds what happens to the answer)."""
    return f"The engine stopped responding (no answer for {silent_s:.0f} s) and was restarted"


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
             ignore_eos: bool = False) -> Generation:  # fmt: skip
        """Start an answer; read the returned Generation for its events.

        While another answer streams, the new one is refused in words (its only event is a
        StreamError) and the first is not touched.
        """
        params = {"temperature": temperature, "top_p": top_p, "max_tokens": max_tokens,
                  "thinking_budget": thinking_budget, "answer_reserve": answer_reserve,
                  "seed": seed}  # fmt: skip
        if ignore_eos:  # benchmarks only (bench/long_reasoning.py)
            params["ignore_eos"] = True
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
