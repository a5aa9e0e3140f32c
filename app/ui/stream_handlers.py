"""The answer being generated, as the window sees it (a ChatController part).

The worker's signals arrive queued on the GUI thread; each handler checks the job number,
so events from a stopped or replaced job are ignored. The text itself lives once, in the
`AnswerStream` (app/core/answer_stream.py) that the worker thread fills and saves; these
handlers only hand each delta to the message widget, which displays it, and show how the
answer ended once the worker has saved it. No buffers, no saving, no SQLite here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.core.answer_stream import AnswerResult, AnswerStream
from app.core.engine.events import TextDelta
from app.core.generation_settings import ContextUse
from app.ui.assistant_message import AssistantMessageWidget
from app.ui.chat_view import ChatView


@dataclass
class LiveAnswer:
    """The answer being generated: its job, its core stream, and the widget showing it."""

    job: int
    answer: AnswerStream
    widget: AssistantMessageWidget | None
    answer_started: bool = False


class StreamHandlers:
    """Mixed into ChatController: expects view, n_ctx, stream, context and its signals."""

    view: ChatView
    n_ctx: int
    stream: LiveAnswer | None
    context: ContextUse

    # -- stream events (queued from the worker thread) -----------------------------------
    def _current(self, job: int) -> LiveAnswer | None:
        s = self.stream
        return s if s is not None and s.job == job else None

    def _widget(self, s: LiveAnswer) -> AssistantMessageWidget | None:
        if s.widget is not None and s.widget in self.view.messages:
            return s.widget
        return None

    def _on_started(self, job: int, prompt_tokens: int, thinking_open: bool) -> None:
        if (s := self._current(job)) is None:
            return
        if (w := self._widget(s)) is not None:
            w.begin(thinking_open)
        self._emit_context()

    def _on_delta(self, job: int, delta: TextDelta) -> None:
        if (s := self._current(job)) is None:
            return
        w = self._widget(s)
        if (delta.thinking or delta.thinking_tokens) and w is not None:
            w.add_thinking(delta.thinking, delta.thinking_tokens)
        if delta.answer or delta.answer_tokens:
            if delta.answer and not s.answer_started:
                s.answer_started = True
                self.sig_thinking.emit(False)
            if w is not None:
                w.add_answer(delta.answer, delta.answer_tokens)
        self._emit_context()

    def _on_finished(self, job: int, result: AnswerResult) -> None:
        if (s := self._current(job)) is None:
            return
        self.stream = None
        w = self._widget(s)
        error = result.error
        if error is None and not result.saved and result.save_error:
            error_kind, message, detail = "save_failed", result.save_error, ""
        elif error is not None:
            error_kind, message, detail = error.kind, error.message, error.detail
        else:
            error_kind = message = detail = ""
        if w is not None:
            if result.raw:
                w.add_raw(result.raw)  # the exact model text arrives once, at the end
            if error_kind:
                w.show_error(error_kind, message, detail)
            else:
                w.finish(result.stop_reason, result.ended_in_thinking, result.stats)
        if error_kind in ("engine_crashed", "engine_hung"):
            self.model_info = None
            self.sig_model.emit(None)
        if result.done is not None and not error_kind:
            self.sig_speed.emit(result.done.decode_tps)
        self.context = ContextUse(self.n_ctx, int(result.stats.get("prompt_tokens", 0)),
                                  int(result.stats.get("thinking_tokens", 0)),
                                  int(result.stats.get("answer_tokens", 0)))  # fmt: skip
        self.sig_thinking.emit(False)
        self.sig_busy.emit(False)
        self.sig_conversations.emit()
        self._emit_context()

    def shutdown(self) -> None:
        """The window closes: the answer in progress is stopped and saved as interrupted
        (by the worker thread, before the engine closes)."""
        if (s := self.stream) is not None:
            s.answer.interrupt()
            self.stream = None

    def _emit_context(self) -> None:
        s = self.stream
        if s is not None:
            a = s.answer
            self.context = ContextUse(self.n_ctx, a.prompt_tokens, a.thinking_tokens,
                                      a.answer_tokens)  # fmt: skip
        elif self.context.n_ctx != self.n_ctx:
            c = self.context
            self.context = ContextUse(self.n_ctx, c.prompt, c.thinking, c.answer)
        self.sig_context.emit(self.context)

    # provided by ChatController
    sig_thinking: Any
    sig_busy: Any
    sig_model: Any
    sig_speed: Any
    sig_context: Any
    sig_conversations: Any
    model_info: dict[str, Any] | None
