"""The bridge between the engine and the GUI thread: one QThread owning the engine client.

An `EngineWorker` QObject lives on one QThread (one owner for the engine client, like a
single-worker executor) and drives it through `app.core.chat_session.ModelRunner`: loads,
and answers, each run by `AnswerStream.run`, which reads the generation with
`next_event(timeout)` and saves the text as it goes, on this thread, never the GUI's. Events
reach the GUI thread only through the worker's signals, one per event as the engine sent it:
the engine already batches deltas by time (the one batching point), so nothing is batched
again here. Every signal carries the job number it belongs to, so late events of an old job
are easy to ignore. The GUI stops or hurries an answer by calling `cancel()` /
`answer_now()` on its AnswerStream directly (thread-safe), even before the job starts.
"""

from __future__ import annotations

import functools
import logging
import threading
import traceback
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.core.answer_stream import AnswerStream
from app.core.chat_session import ModelRunner
from app.core.engine.events import StreamEvent, StreamStarted, TextDelta
from app.core.engine_share import WINDOW, EngineShare

log = logging.getLogger(__name__)


class EngineWorker(QObject):
    """Owns the engine client; runs on its own QThread. Talk to it through EngineBridge."""

    sig_loaded = Signal(int, object)  # job, info dict
    sig_load_failed = Signal(int, str, str, str)  # job, kind, message, detail
    sig_started = Signal(int, int, bool)  # job, prompt tokens, thinking open
    sig_delta = Signal(int, object)  # job, TextDelta: thinking and answer parts, exact tokens
    sig_finished = Signal(int, object)  # job, AnswerResult (saved, or why it was not)

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client
        self.runner = ModelRunner(client)
        # shared with the local server (app/serve): whoever loads or answers holds it
        self.share = EngineShare()
        self._loaded: tuple[str, dict[str, Any], int] | None = None  # path, opts, ticket
        self.loading = False  # a load runs on the worker thread (read from the GUI thread)

    # -- slots run on the worker thread --------------------------------------------------
    @Slot(int, str, object)
    def load(self, job: int, path: str, opts: dict[str, Any]) -> None:
        self.loading = True
        try:
            info = self._load_shared(path, opts)
        except Exception as exc:
            kind = getattr(exc, "kind", "internal")
            message = getattr(exc, "message", "") or f"Loading failed: {exc}"
            detail = getattr(exc, "detail", "") or traceback.format_exc()
            if kind == "out_of_memory":  # name what would fit (the planner's figures)
                from app.core.planner.fit_advice import with_smaller_options

                message = with_smaller_options(message, path, opts.get("n_ctx"),
                                               opts.get("type_k"))  # fmt: skip
            self.sig_load_failed.emit(job, kind, message, detail)
            return
        finally:
            self.loading = False
        self.sig_loaded.emit(job, info)

    @Slot(int, str, object)
    def reload(self, job: int, path: str, opts: dict[str, Any]) -> None:
        """Restart the engine process, then load the model again."""
        try:
            self.client.close()
        except Exception:
            log.exception("closing the engine before a reload failed")
        self.load(job, path, opts)

    @Slot()
    def close_engine(self) -> None:
        """Close the engine process, then end this worker's thread (the last job)."""
        try:
            self.client.close()
        except Exception:
            log.exception("closing the engine failed")
        finally:
            QThread.currentThread().quit()

    @Slot(int, object)
    def generate(self, job: int, answer: AnswerStream) -> None:
        """Run one answer to its end; `sig_finished` always follows, whatever happens."""

        def forward(event: StreamEvent) -> None:
            if isinstance(event, TextDelta):
                self.sig_delta.emit(job, event)
            elif isinstance(event, StreamStarted):
                self.sig_started.emit(job, event.prompt_tokens, event.thinking_open)

        try:
            result = self._stream_shared(answer, forward)
        except BaseException:
            log.exception("the answer stream failed")
            result = answer.finish()
        self.sig_finished.emit(job, result)

    def _load_shared(self, path: str, opts: dict[str, Any]) -> dict[str, Any]:
        """Load once the engine is free (the local server may be answering)."""
        self.share.acquire(WINDOW)
        try:
            info = self.runner.load(path, **opts)
            self._loaded = (path, dict(opts), self.share.note_load())
            return info
        finally:
            self.share.release(WINDOW)

    def _stream_shared(self, answer: AnswerStream, forward: Any) -> Any:
        """Answer once the engine is free; if the local server loaded another model since,
        the window's model is loaded again first. A Stop while waiting ends the answer."""
        if not self.share.acquire(WINDOW, should_stop=lambda: answer.cancel_requested):
            return self.runner.stream(answer, forward)  # stopped: ends without the engine
        try:
            loaded = self._loaded
            if loaded is not None and not self.share.is_current(loaded[2]):
                try:
                    self.runner.load(loaded[0], **loaded[1])
                    self._loaded = (loaded[0], loaded[1], self.share.note_load())
                except Exception:  # the answer then reports the engine's words
                    log.exception("loading the window's model again failed")
            return self.runner.stream(answer, forward)
        finally:
            self.share.release(WINDOW)


def _quietly(action: Any) -> None:
    try:
        action()
    except Exception:
        log.exception("unblocking the engine failed")


class EngineBridge(QObject):
    """GUI-thread handle: starts the worker thread and queues work onto it."""

    sig_request_load = Signal(int, str, object)
    sig_request_reload = Signal(int, str, object)
    sig_request_generate = Signal(int, object)
    sig_request_close = Signal()

    def __init__(self, client: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self.engine_thread = QThread()
        self.engine_thread.setObjectName("ponder-engine")
        self.worker = EngineWorker(client)
        self.worker.moveToThread(self.engine_thread)
        self.sig_request_load.connect(self.worker.load)
        self.sig_request_reload.connect(self.worker.reload)
        self.sig_request_generate.connect(self.worker.generate)
        self.sig_request_close.connect(self.worker.close_engine)
        self.engine_thread.start()
        self._jobs = 0
        self._closed = False

    def _next(self) -> int:
        self._jobs += 1
        return self._jobs

    def load(self, path: str, **opts: Any) -> int:
        job = self._next()
        self._unblock()
        self.sig_request_load.emit(job, path, opts)
        return job

    def reload(self, path: str, **opts: Any) -> int:
        job = self._next()
        self._unblock()
        self.sig_request_reload.emit(job, path, opts)
        return job

    def _unblock(self) -> None:
        """A new load or Reload must not queue behind a job that may never end (issue 20).

        A load still running is abandoned: its engine is closed (its late failure belongs to
        an old job and is ignored). An answer still running was stopped by the controller;
        if the engine does not answer a ping (stopped, stuck), it is declared hung at once
        instead of after the watchdog's silence. Runs off the GUI thread."""
        worker, client = self.worker, self.client
        if worker.loading and hasattr(client, "close"):
            target: Any = functools.partial(client.close, timeout_s=1.0)
        elif worker.runner.active is not None and hasattr(client, "kill_if_hung"):
            target = client.kill_if_hung
        else:
            return
        threading.Thread(target=_quietly, args=(target,), name="engine-unblock",
                         daemon=True).start()  # fmt: skip

    def generate(self, answer: AnswerStream) -> int:
        """Queue an answer (its messages and parameters are in it); returns its job number."""
        job = self._next()
        self.sig_request_generate.emit(job, answer)
        return job

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop the current answer, close the engine on its thread, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        active = self.worker.runner.active
        if active is not None:
            active.interrupt()
        self.sig_request_close.emit()  # runs after the current job, then quits the thread
        if not self.engine_thread.wait(timeout_ms):
            try:
                self.client.close(timeout_s=1.0)  # unblocks a stuck load or stream
            except TypeError:
                self.client.close()
            self.engine_thread.quit()
            self.engine_thread.wait(timeout_ms)
