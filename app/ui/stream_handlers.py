"""The answer being generated and the handlers for its stream events (a ChatController part).

The worker's signals arrive queued on the GUI thread; each handler checks the job number,
so events from a stopped or replaced job are ignored. The text lives in `_Stream` (not in
the widget, which goes away when another conversation is opened) and is saved every
second and at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from app.core.chat_store import ChatStore
from app.ui.assistant_message import AssistantMessageWidget
from app.ui.chat_view import ChatView


@dataclass
class _Stream:
    """The answer being generated: its buffers live here, not in the (replaceable) widget."""

    job: int
    conversation_id: int
    message_id: int
    widget: AssistantMessageWidget | None
    t0: float = field(default_factory=time.monotonic)
    thinking: list[str] = field(default_factory=list)
    answer: list[str] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    thinking_tokens: int = 0
    answer_tokens: int = 0
    thinking_s: float | None = None

    def texts(self) -> tuple[str, str, str]:
        return "".join(self.answer), "".join(self.thinking), "".join(self.raw)


class StreamHandlers:
    """Mixed into ChatController: expects store, view, bridge, n_ctx, stream and signals."""

    store: ChatStore
    view: ChatView
    n_ctx: int
    stream: _Stream | None

    # -- stream events (queued from the worker thread) -----------------------------------
    def _current(self, job: int) -> _Stream | None:
        s = self.stream
        return s if s is not None and s.job == job else None

    def _widget(self, s: _Stream) -> AssistantMessageWidget | None:
        if s.widget is not None and s.widget in self.view.messages:
            return s.widget
        return None

    def _on_started(self, job: int, prompt_tokens: int, thinking_open: bool) -> None:
        if (s := self._current(job)) is None:
            return
        s.prompt_tokens = prompt_tokens
        if (w := self._widget(s)) is not None:
            w.begin(thinking_open)
        self._emit_context()

    def _on_thinking(self, job: int, text: str, tokens: int) -> None:
        if (s := self._current(job)) is None:
            return
        s.thinking.append(text)
        s.thinking_tokens += tokens
        if (w := self._widget(s)) is not None:
            w.add_thinking(text, tokens)
        self._emit_context()

    def _on_answer(self, job: int, text: str, tokens: int) -> None:
        if (s := self._current(job)) is None:
            return
        if not s.answer and s.thinking_s is None:
            s.thinking_s = time.monotonic() - s.t0
            self.sig_thinking.emit(False)
        s.answer.append(text)
        s.answer_tokens += tokens
        if (w := self._widget(s)) is not None:
            w.add_answer(text, tokens)
        self._emit_context()

    def _on_raw(self, job: int, text: str) -> None:
        if (s := self._current(job)) is not None:
            s.raw.append(text)
            if (w := self._widget(s)) is not None:
                w.add_raw(text)

    def shutdown(self) -> None:
        """The window closes: save the answer in progress as partial and stop it."""
        if (s := self.stream) is not None:
            self.bridge.cancel(s.job)
            stats = {**self._stats(s), "stop_reason": "interrupted"}
            self.store.finish_message(s.message_id, "partial", *s.texts(), stats)
            self.stream = None
            self._save_timer.stop()

    def save_progress(self) -> None:
        """Save the streaming message's text so far (every second)."""
        if (s := self.stream) is not None:
            self.store.update_streaming(s.message_id, *s.texts())

    def _stats(self, s: _Stream, done: Any = None) -> dict[str, Any]:
        stats: dict[str, Any] = {
            "prompt_tokens": s.prompt_tokens,
            "thinking_tokens": s.thinking_tokens,
            "answer_tokens": s.answer_tokens,
            "n_ctx": self.n_ctx,
            "elapsed_s": round(time.monotonic() - s.t0, 3),
        }
        if s.thinking_s is not None:
            stats["thinking_s"] = round(s.thinking_s, 3)
        if done is not None:
            stats.update(
                stop_reason=done.stop_reason,
                completion_tokens=done.completion_tokens,
                ttft_s=done.ttft_s,
                decode_tps=done.decode_tps,
                elapsed_s=round(done.elapsed_s, 3),
            )
            if done.thinking_tokens:
                stats["thinking_tokens"] = done.thinking_tokens
            if done.prompt_tokens:
                stats["prompt_tokens"] = done.prompt_tokens
        return stats

    def _end(self, s: _Stream) -> None:
        self.stream = None
        self._save_timer.stop()
        self.sig_thinking.emit(False)
        self.sig_busy.emit(False)
        self.sig_conversations.emit()

    def _on_done(self, job: int, done: Any) -> None:
        if (s := self._current(job)) is None:
            return
        stats = self._stats(s, done)
        status = "complete" if done.stop_reason == "eos" else "partial"
        self.store.finish_message(s.message_id, status, *s.texts(), stats)
        if (w := self._widget(s)) is not None:
            w.finish(done.stop_reason, done.ended_in_thinking, stats)
        self.sig_speed.emit(done.decode_tps)
        self._end(s)
        self._emit_context()

    def _on_error(self, job: int, kind: str, message: str, detail: str) -> None:
        if (s := self._current(job)) is None:
            return
        stats = self._stats(s)
        stats["error"] = {"kind": kind, "message": message, "detail": detail[-4000:]}
        self.store.finish_message(s.message_id, "error", *s.texts(), stats)
        if kind == "engine_crashed":
            self.model_info = None
            self.sig_model.emit(None)
        if (w := self._widget(s)) is not None:
            w.show_error(kind, message, detail)
        self._end(s)
