"""One engine child process: its pipes, reader threads, waiters, stderr tail and watchdog.

Everything of one child lives in one `_EngineProcess`, so a restarted engine never
receives the old one's events. Replies are routed by command id to their `_Waiter`; a
reply nobody waits for is dropped. The watchdog pings a child that stays silent while it
works and kills it when no pong comes (`engine_hung`). Also here: how the child is started
(`host_command`), the allow-list environment it gets, and failures in words. No Qt.
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from backends.base import SECRET_ENV_VARS
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
