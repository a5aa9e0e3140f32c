"""The bridge between the engine client and the GUI thread.

A `EngineWorker` QObject lives on one QThread (one owner for the engine client, like a
single-worker executor): it loads models and iterates generations there, and hands events
to the GUI thread only through its signals, batched by time (every `BATCH_S`, the first
event of a stream never delayed). The GUI calls `cancel()` / `answer_now()` directly: they
only set flags and forward to the generation, which is thread-safe. Every signal carries
the job number it belongs to, so late events of an old job are easy to ignore.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.core.engine.events import StreamDone, StreamError, StreamStarted, TextDelta

BATCH_S = 0.02  # at most ~50 batches a second reach the GUI thread
_END = object()


@dataclass
class _Batch:
    thinking: list[str] = field(default_factory=list)
    answer: list[str] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    thinking_tokens: int = 0
    answer_tokens: int = 0

    def add(self, delta: TextDelta, answer_started: bool) -> None:
        t, a = delta.thinking, delta.answer
        if t:
            self.thinking.append(t)
        if a:
            self.answer.append(a)
        if delta.raw:
            self.raw.append(delta.raw)
        if t and a:
            share = round(delta.tokens * len(t) / (len(t) + len(a)))
            self.thinking_tokens += share
            self.answer_tokens += delta.tokens - share
        elif a or (answer_started and not t):
            self.answer_tokens += delta.tokens
        else:
            self.thinking_tokens += delta.tokens

    @property
    def empty(self) -> bool:
        return not (
            self.thinking or self.answer or self.raw or self.thinking_tokens or self.answer_tokens
        )


def _pump(gen: Any, out: queue.SimpleQueue) -> None:
    """Iterate a blocking generation on a helper thread, so the worker can flush on time."""
    try:
        for event in gen:
            out.put(event)
    except BaseException as exc:  # reported by the worker, never swallowed
        out.put(exc)
    out.put(_END)


class EngineWorker(QObject):
    """Owns the engine client; runs on its own QThread. Talk to it through EngineBridge."""

    sig_loaded = Signal(int, object)  # job, info dict
    sig_load_failed = Signal(int, str, str, str)  # job, kind, message, detail
    sig_started = Signal(int, int, bool)  # job, prompt tokens, thinking open
    sig_thinking_delta = Signal(int, str, int)  # job, text, tokens
    sig_answer_delta = Signal(int, str, int)
    sig_raw_delta = Signal(int, str)
    sig_done = Signal(int, object)  # job, StreamDone
    sig_error = Signal(int, str, str, str)  # job, kind, message, detail

    def __init__(self, client: Any, batch_s: float = BATCH_S) -> None:
        super().__init__()
        self.client = client
        self.batch_s = batch_s
        self._lock = threading.Lock()
        self._job = 0
        self._gen: Any = None
        self._cancelled: set[int] = set()
        self._answer_now: set[int] = set()

    # -- called from the GUI thread ------------------------------------------------------
    def cancel(self, job: int) -> None:
        with self._lock:
            self._cancelled.add(job)
            gen = self._gen if self._job == job else None
        if gen is not None:
            gen.cancel()

    def answer_now(self, job: int) -> None:
        with self._lock:
            self._answer_now.add(job)
            gen = self._gen if self._job == job else None
        if gen is not None:
            gen.answer_now()

    # -- slots run on the worker thread --------------------------------------------------
    @Slot(int, str, object)
    def load(self, job: int, path: str, opts: dict[str, Any]) -> None:
        try:
            info = self.client.load(path, **opts)
        except Exception as exc:
            kind = getattr(exc, "kind", "internal")
            message = getattr(exc, "message", "") or f"Loading failed: {exc}"
            self.sig_load_failed.emit(job, kind, message, getattr(exc, "detail", ""))
            return
        self.sig_loaded.emit(job, dict(info))

    @Slot(int, str, object)
    def reload(self, job: int, path: str, opts: dict[str, Any]) -> None:
        """Restart the engine process, then load the model again."""
        try:
            self.client.close()
        except Exception:
            pass
        self.load(job, path, opts)

    @Slot()
    def close_engine(self) -> None:
        """Close the engine process, then end this worker's thread (the last job)."""
        try:
            self.client.close()
        except Exception:
            traceback.print_exc()
        finally:
            QThread.currentThread().quit()

    @Slot(int, object, object)
    def generate(self, job: int, messages: list[dict[str, str]], params: dict[str, Any]) -> None:
        with self._lock:
            if job in self._cancelled:
                self.sig_done.emit(job, StreamDone(str(job), "cancelled", 0, 0, None, None, 0.0))
                return
            try:
                gen = self.client.chat(messages, **params)
            except Exception as exc:
                self.sig_error.emit(
                    job,
                    getattr(exc, "kind", "internal"),
                    getattr(exc, "message", str(exc)),
                    traceback.format_exc(),
                )
                return
            self._job, self._gen = job, gen
            early_answer = job in self._answer_now
        if early_answer:
            gen.answer_now()
        try:
            self._stream(job, gen)
        finally:
            with self._lock:
                self._gen = None
                self._cancelled.discard(job)
                self._answer_now.discard(job)

    def _stream(self, job: int, gen: Any) -> None:
        events: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(
            target=_pump, args=(gen, events), daemon=True, name="ponder-stream"
        ).start()
        batch, last_flush, answer_started = _Batch(), -1e9, False
        while True:
            try:
                if batch.empty:
                    item = events.get()
                else:
                    item = events.get(
                        timeout=max(0.0, last_flush + self.batch_s - time.monotonic())
                    )
            except queue.Empty:
                self._flush(job, batch)
                batch, last_flush = _Batch(), time.monotonic()
                continue
            if isinstance(item, TextDelta):
                batch.add(item, answer_started)
                answer_started = answer_started or bool(item.answer)
                if time.monotonic() - last_flush >= self.batch_s:
                    self._flush(job, batch)
                    batch, last_flush = _Batch(), time.monotonic()
                continue
            self._flush(job, batch)
            batch = _Batch()
            if isinstance(item, StreamStarted):
                self.sig_started.emit(job, item.prompt_tokens, item.thinking_open)
            elif isinstance(item, StreamDone):
                self.sig_done.emit(job, item)
                return
            elif isinstance(item, StreamError):
                self.sig_error.emit(job, item.kind, item.message, item.detail)
                return
            elif isinstance(item, BaseException):
                detail = "".join(traceback.format_exception(item))
                self.sig_error.emit(job, "internal", f"The stream failed: {item}", detail)
                return
            elif item is _END:
                self.sig_error.emit(job, "internal", "The engine stopped without finishing.", "")
                return

    def _flush(self, job: int, batch: _Batch) -> None:
        if batch.thinking or batch.thinking_tokens:
            self.sig_thinking_delta.emit(job, "".join(batch.thinking), batch.thinking_tokens)
        if batch.answer or batch.answer_tokens:
            self.sig_answer_delta.emit(job, "".join(batch.answer), batch.answer_tokens)
        if batch.raw:
            self.sig_raw_delta.emit(job, "".join(batch.raw))


class EngineBridge(QObject):
    """GUI-thread handle: starts the worker thread and queues work onto it."""

    sig_request_load = Signal(int, str, object)
    sig_request_reload = Signal(int, str, object)
    sig_request_generate = Signal(int, object, object)
    sig_request_close = Signal()

    def __init__(
        self, client: Any, parent: QObject | None = None, batch_s: float = BATCH_S
    ) -> None:
        super().__init__(parent)
        self.client = client
        self.thread = QThread()
        self.thread.setObjectName("ponder-engine")
        self.worker = EngineWorker(client, batch_s)
        self.worker.moveToThread(self.thread)
        self.sig_request_load.connect(self.worker.load)
        self.sig_request_reload.connect(self.worker.reload)
        self.sig_request_generate.connect(self.worker.generate)
        self.sig_request_close.connect(self.worker.close_engine)
        self.thread.start()
        self._jobs = 0
        self._closed = False

    def _next(self) -> int:
        self._jobs += 1
        return self._jobs

    def load(self, path: str, **opts: Any) -> int:
        job = self._next()
        self.sig_request_load.emit(job, path, opts)
        return job

    def reload(self, path: str, **opts: Any) -> int:
        job = self._next()
        self.sig_request_reload.emit(job, path, opts)
        return job

    def generate(self, messages: list[dict[str, str]], **params: Any) -> int:
        job = self._next()
        self.sig_request_generate.emit(job, messages, params)
        return job

    def cancel(self, job: int) -> None:
        self.worker.cancel(job)

    def answer_now(self, job: int) -> None:
        self.worker.answer_now(job)

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop the current job, close the engine on its thread, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        self.worker.cancel(self._jobs)
        self.sig_request_close.emit()  # runs after the current job, then quits the thread
        if not self.thread.wait(timeout_ms):
            try:
                self.client.close(timeout_s=1.0)  # unblocks a stuck load or stream
            except TypeError:
                self.client.close()
            self.thread.quit()
            self.thread.wait(timeout_ms)
