"""One answer being generated: its buffers, exact token counts, save schedule and ending.

`AnswerStream.run(generation, on_event)` is the one reader loop, used by the window's engine
worker thread, the CLI and the tests: it reads the generation with `next_event(timeout)`,
`apply`s each event (the text goes into lists of parts, joined only to save or finish), hands
it to `on_event` for display, and saves. Saving happens on that reader thread, never on the
GUI thread: at most once a second while streaming it appends only the parts that arrived
since the last save (`ChatStore.append_streaming`, `thinking = thinking || ?`), so a crash
loses at most one second of text and a save costs the same at token 16,000 as at token 10.
`finish()` runs in a `finally` and writes the final text and status: complete (the model
ended), partial (stopped, length limit, interrupted) or error.

When a save fails (disk full, database error) the stream stops saving, cancels the
generation and ends with a worded `save_failed` error: no error every second, no endless
"Thinking…". `cancel()`, `answer_now()` and `interrupt()` may be called from any thread. If a
cancelled generation sends nothing for `CANCEL_GRACE_S`, the engine is declared hung.
No Qt.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.core.engine.events import StreamDone, StreamError, StreamEvent, StreamStarted, TextDelta
from app.core.generation_settings import ending_note
from app.core.stream_owner import describe_save_error

log = logging.getLogger(__name__)

SAVE_INTERVAL_S = 1.0  # a crash loses at most this much streamed text
POLL_S = 0.25  # the longest the reader waits before looking at its clock again
CANCEL_GRACE_S = 15.0  # after Stop, silence this long means the engine hangs
HUNG_MESSAGE = (
    "The engine stopped responding: Stop had no effect for {s:.0f} s. Reload the engine to "
    "continue; the answer so far is kept."
)


class GenerationLike(Protocol):
    """What the stream needs of `app.core.engine.Generation` (and the UI's stand-in)."""

    def next_event(self, timeout_s: float | None = None) -> StreamEvent | None: ...
    def cancel(self) -> None: ...
    def answer_now(self) -> None: ...


class StreamSink(Protocol):
    """Where a streaming message is saved (app.core.chat_store.ChatStore)."""

    def append_streaming(
        self, message_id: int, thinking: str, answer: str, stats: dict[str, Any] | None = None
    ) -> None: ...
    def finish_message(self, message_id: int, status: str, content: str, thinking: str,
                       raw: str, stats: dict[str, Any] | None = None) -> None: ...  # fmt: skip


@dataclass(frozen=True)
class ModelRef:
    """The model an answer comes from: where its speed is recorded."""

    path: str
    name: str | None = None
    n_ctx: int = 0


# on_measured(model path, StreamDone, n_ctx): called once per finished stream with a StreamDone
MeasureHook = Callable[[str, StreamDone, int], None]


@dataclass(frozen=True)
class AnswerResult:
    """How an answer ended, as saved (or as it would have been saved)."""

    status: str  # complete, partial, error
    stop_reason: str  # eos, length, cancelled, interrupted, error
    stats: dict[str, Any]
    thinking: str
    answer: str
    raw: str
    done: StreamDone | None = None
    error: StreamError | None = None
    saved: bool = True
    save_error: str | None = None  # why it could not be saved, in words
    model: ModelRef | None = None

    @property
    def ended_in_thinking(self) -> bool:
        if self.done is not None:
            return self.done.ended_in_thinking
        return bool(self.thinking) and not self.answer

    @property
    def note(self) -> str | None:
        return ending_note(self.stats)


@dataclass
class AnswerStream:
    """The answer to one request; `messages` and `params` are what goes to `client.chat`."""

    messages: list[dict[str, str]]
    params: dict[str, Any] = field(default_factory=dict)
    store: StreamSink | None = None  # None: nothing is saved (the CLI)
    message_id: int | None = None
    model: ModelRef | None = None
    on_measured: MeasureHook | None = None
    clock: Callable[[], float] = time.monotonic
    # buffers: lists of parts, joined only to save or finish
    thinking: list[str] = field(default_factory=list)
    answer: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    thinking_tokens: int = 0
    answer_tokens: int = 0
    thinking_open: bool = True
    thinking_s: float | None = None
    done: StreamDone | None = None
    error: StreamError | None = None
    save_error: str | None = None
    result: AnswerResult | None = None

    def __post_init__(self) -> None:
        self.t0 = self.clock()
        self._saved = (0, 0)  # parts of thinking and answer already saved
        self._last_save = self.t0
        self._lock = threading.Lock()
        self._gen: GenerationLike | None = None
        self._cancel_at: float | None = None
        self._answer_now = False
        self._interrupted = False

    # -- control, from any thread --------------------------------------------------------
    @property
    def cancel_requested(self) -> bool:
        return self._cancel_at is not None

    @property
    def ended(self) -> bool:
        return self.done is not None or self.error is not None

    def cancel(self) -> None:
        """Stop the answer (keeps what was written); safe before the generation starts."""
        with self._lock:
            if self._cancel_at is None:
                self._cancel_at = self.clock()
            gen = self._gen
        if gen is not None and not self.ended:
            gen.cancel()

    def interrupt(self) -> None:
        """Stop because Ponder closes: the message is saved as interrupted."""
        self._interrupted = True
        self.cancel()

    def answer_now(self) -> None:
        with self._lock:
            self._answer_now = True
            gen = self._gen
        if gen is not None and not self.ended:
            gen.answer_now()

    def attach(self, gen: GenerationLike) -> None:
        """The generation started: forward a Stop or Answer now that came before it."""
        with self._lock:
            self._gen = gen
            cancel, answer_now = self._cancel_at is not None, self._answer_now
        if cancel:
            gen.cancel()
        elif answer_now:
            gen.answer_now()

    # -- the reader thread ---------------------------------------------------------------
    def run(
        self, gen: GenerationLike, on_event: Callable[[StreamEvent], None] | None = None
    ) -> AnswerResult:
        """Read `gen` to its end (saving as it goes), then finish; returns the result.

        An exception from the generation or from `on_event` ends the stream as an
        `internal` error with its traceback (reported, never swallowed); Ctrl-C
        (KeyboardInterrupt) propagates after the message is finished as interrupted.
        """
        self.attach(gen)
        try:
            while not self.ended:
                try:
                    self._step(gen, on_event)
                except Exception as exc:
                    log.exception("the answer stream failed")
                    error = StreamError(None, "internal", f"The stream failed: {exc}",
                                        traceback.format_exc())  # fmt: skip
                    self.apply(error)
                    gen.cancel()
        finally:
            result = self.finish()
        return result

    def _step(self, gen: GenerationLike, on_event: Callable[[StreamEvent], None] | None) -> None:
        event = gen.next_event(self._wait_s())
        now = self.clock()
        if event is None:
            event = self._hung_error(now)
            if event is None:
                self.maybe_save(now)
                return
        self.apply(event)
        if on_event is not None:
            on_event(event)
        if not self.ended:
            self.maybe_save(now)
            if self.save_error is not None:
                self._stop_for_save_error(gen, on_event)

    def _wait_s(self) -> float:
        now, wait = self.clock(), POLL_S
        if self.store is not None and self._unsaved():
            wait = min(wait, self._last_save + SAVE_INTERVAL_S - now)
        if self._cancel_at is not None:
            wait = min(wait, self._cancel_at + CANCEL_GRACE_S - now)
        return max(0.001, wait)

    def _hung_error(self, now: float) -> StreamError | None:
        if self._cancel_at is None or now - self._cancel_at < CANCEL_GRACE_S:
            return None
        return StreamError(None, "engine_hung", HUNG_MESSAGE.format(s=CANCEL_GRACE_S))

    def _stop_for_save_error(
        self, gen: GenerationLike, on_event: Callable[[StreamEvent], None] | None
    ) -> None:
        """Saving failed: end the generation (bounded wait) and the stream, in words."""
        gen.cancel()
        deadline = self.clock() + CANCEL_GRACE_S
        while (left := deadline - self.clock()) > 0:
            event = gen.next_event(min(left, POLL_S))
            if isinstance(event, StreamDone | StreamError):
                if isinstance(event, StreamDone):
                    self.done = event  # for the speed and the raw text; the error ends it
                break
        error = StreamError(None, "save_failed", self.save_error or "")
        self.error = error
        if on_event is not None:
            on_event(error)

    def apply(self, event: StreamEvent) -> None:
        """Take one event into the buffers and counts (exact, from the engine)."""
        if isinstance(event, TextDelta):
            if event.thinking:
                self.thinking.append(event.thinking)
            if event.answer:
                if not self.answer and self.thinking_s is None:
                    self.thinking_s = self.clock() - self.t0
                self.answer.append(event.answer)
            self.thinking_tokens += event.thinking_tokens
            self.answer_tokens += event.answer_tokens
        elif isinstance(event, StreamStarted):
            self.prompt_tokens = event.prompt_tokens
            self.thinking_open = event.thinking_open
        elif isinstance(event, StreamDone):
            self.done = event
            self.prompt_tokens = event.prompt_tokens or self.prompt_tokens
            self.thinking_tokens = event.thinking_tokens or self.thinking_tokens
            self.answer_tokens = event.answer_tokens or self.answer_tokens
        elif isinstance(event, StreamError):
            self.error = event

    def _unsaved(self) -> bool:
        return self._saved != (len(self.thinking), len(self.answer))

    def maybe_save(self, now: float | None = None) -> None:
        """Append the parts that arrived since the last save, at most once a second."""
        now = self.clock() if now is None else now
        if self.store is None or self.message_id is None or self.save_error is not None:
            return
        if now - self._last_save < SAVE_INTERVAL_S or not self._unsaved():
            return
        t, a = len(self.thinking), len(self.answer)
        new_thinking = "".join(self.thinking[self._saved[0] : t])
        new_answer = "".join(self.answer[self._saved[1] : a])
        try:
            self.store.append_streaming(self.message_id, new_thinking, new_answer, self.stats())
        except (sqlite3.Error, OSError) as exc:
            log.warning("saving the streaming answer failed: %s", exc)
            self.save_error = describe_save_error(exc)
            return
        self._saved, self._last_save = (t, a), now

    # -- the end -------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """The counts so far (and the engine's figures once it is done)."""
        stats: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "thinking_tokens": self.thinking_tokens,
            "answer_tokens": self.answer_tokens,
            "elapsed_s": round(self.clock() - self.t0, 3),
        }
        if self.model is not None and self.model.n_ctx:
            stats["n_ctx"] = self.model.n_ctx
        if self.thinking_s is not None:
            stats["thinking_s"] = round(self.thinking_s, 3)
        if (d := self.done) is not None:
            stats.update(
                stop_reason=d.stop_reason,
                completion_tokens=d.completion_tokens,
                ttft_s=d.ttft_s,
                decode_tps=d.decode_tps,
                elapsed_s=round(d.elapsed_s, 3),
            )
            if d.thinking_ended_by:
                stats["thinking_ended_by"] = d.thinking_ended_by
            for key in ("peak_memory_bytes", "peak_rss_bytes"):
                if d.extra.get(key):
                    stats[key] = d.extra[key]
        return stats

    def _ending(self) -> tuple[str, str]:
        if self.error is not None:
            return "error", "error"
        if self._interrupted:
            return "partial", "interrupted"
        if self.done is None:
            return "partial", "interrupted"  # the reader itself stopped (Ctrl-C, exception)
        reason = self.done.stop_reason
        return ("complete" if reason == "eos" else "partial"), reason

    def finish(self) -> AnswerResult:
        """Save the final text, stats and status once (later calls return the same result)."""
        if self.result is not None:
            return self.result
        status, reason = self._ending()
        stats = {**self.stats(), "stop_reason": reason}
        if (e := self.error) is not None:
            stats["error"] = {"kind": e.kind, "message": e.message, "detail": e.detail[-4000:]}
        thinking, answer = "".join(self.thinking), "".join(self.answer)
        raw = self.done.raw if self.done is not None else ""
        saved = self._save_final(status, answer, thinking, raw, stats)
        self.result = AnswerResult(status, reason, stats, thinking, answer, raw, self.done,
                                   self.error, saved, self.save_error, self.model)  # fmt: skip
        self._measure()
        return self.result

    def _save_final(self, status: str, answer: str, thinking: str, raw: str,
                    stats: dict[str, Any]) -> bool:  # fmt: skip
        if self.store is None or self.message_id is None:
            return False
        try:
            self.store.finish_message(self.message_id, status, answer, thinking, raw, stats)
        except (sqlite3.Error, OSError) as exc:
            log.warning("saving the finished answer failed: %s", exc)
            self.save_error = self.save_error or describe_save_error(exc)
            return False
        return True

    def _measure(self) -> None:
        done, model = self.done, self.model
        if self.on_measured is None or done is None or model is None or not done.decode_tps:
            return
        try:
            self.on_measured(model.path, done, model.n_ctx)
        except Exception:  # a measurement must never break the chat
            log.exception("recording the answer's speed failed")
