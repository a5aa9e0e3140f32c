"""The assistant's message: thinking panel, answer, raw output, error card and actions.

Streaming calls (`begin`, `add_thinking`, `add_answer`, `add_raw`, `finish`, `show_error`)
only append; Markdown is rendered once in `finish`. A saved message is shown with
`show_saved`, its status (partial, error) said in words.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QVBoxLayout

from app.core.generation_settings import ending_note
from app.ui.message_widgets import AnswerView, ErrorCard, _action
from app.ui.safe_text import plain
from app.ui.thinking_panel import ThinkingPanel

PARTIAL_NOTES = {
    "cancelled": "Stopped. The answer above is partial.",
    "length": "The length limit was reached. The answer above is partial.",
    "interrupted": "Interrupted: Ponder closed before this answer finished.",
}


def stats_line(stats: dict) -> str:
    parts = []
    if stats.get("completion_tokens"):
        parts.append(f"{stats['completion_tokens']:,} tokens")
    if stats.get("decode_tps"):
        parts.append(f"{stats['decode_tps']:.1f} tokens/s")
    if stats.get("elapsed_s"):
        parts.append(f"{stats['elapsed_s']:.1f} s")
    return " · ".join(parts)


class AssistantMessageWidget(QFrame):
    sig_regenerate = Signal()
    sig_reload_engine = Signal()
    sig_new_chat = Signal()
    sig_drop_turns = Signal()
    sig_think_harder = Signal(int)  # message id: ask the big model too (Auto routing)

    def __init__(
        self, message_id: int, position: int, model: str | None = None, parent=None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("AssistantCard")
        self.message_id, self.position = message_id, position
        self.streaming = False
        self._raw: list[str] = []
        self._answer: list[str] = []
        self._answer_started = False
        self.error_card: ErrorCard | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 4)
        layout.setSpacing(6)
        self._layout = layout
        self.model_label = plain(QLabel(model or "Assistant", self))
        self.model_label.setObjectName("StatusNote")
        layout.addWidget(self.model_label)
        self.thinking = ThinkingPanel(self)
        self.thinking.hide()
        layout.addWidget(self.thinking)
        self.answer = AnswerView(self)
        layout.addWidget(self.answer)
        self.raw_view = QPlainTextEdit(self)
        self.raw_view.setObjectName("RawView")
        self.raw_view.setReadOnly(True)
        self.raw_view.setFixedHeight(200)
        self.raw_view.hide()
        layout.addWidget(self.raw_view)
        self.note = plain(QLabel(self))
        self.note.setObjectName("PartialNote")
        self.note.setWordWrap(True)
        self.note.hide()
        layout.addWidget(self.note)
        self.route_note = plain(QLabel(self))  # Auto: which model answered and why
        self.route_note.setObjectName("StatusNote")
        self.route_note.setWordWrap(True)
        self.route_note.hide()
        layout.addWidget(self.route_note)
        self.action_bar = QFrame(self)
        row = QHBoxLayout(self.action_bar)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(2)
        self.copy_answer_button = _action("Copy answer", "Copy the answer", self.action_bar)
        self.copy_answer_button.clicked.connect(self.copy_answer)
        self.copy_thinking_button = _action("Copy thinking", "Copy the reasoning", self.action_bar)
        self.copy_thinking_button.clicked.connect(self.copy_thinking)
        self.raw_button = _action(
            "Raw output", "Show exactly what the model wrote", self.action_bar
        )
        self.raw_button.setCheckable(True)
        self.raw_button.toggled.connect(self.show_raw)
        self.regenerate_button = _action("Regenerate", "Answer this again", self.action_bar)
        self.regenerate_button.clicked.connect(self.sig_regenerate)
        self.think_harder_button = _action(
            "Think harder", "Ask the big model too, keeping this answer", self.action_bar
        )
        self.think_harder_button.clicked.connect(
            lambda: self.sig_think_harder.emit(self.message_id)
        )
        self.think_harder_button.hide()
        self._can_think_harder = False
        self.stats = plain(QLabel(self.action_bar))
        self.stats.setObjectName("StatusNote")
        for w in (
            self.copy_answer_button,
            self.copy_thinking_button,
            self.raw_button,
            self.regenerate_button,
            self.think_harder_button,
        ):
            row.addWidget(w)
        row.addStretch(1)
        row.addWidget(self.stats)
        layout.addWidget(self.action_bar)
        self.action_bar.hide()

    # -- streaming -----------------------------------------------------------------------
    def begin(self, thinking_open: bool = True) -> None:
        """The answer starts; the panel opens only when the prompt opened the thinking (the
        engine says so) or thinking text arrives: a model that does not reason gets none."""
        self.streaming = True
        if thinking_open and not self.thinking.live:
            self.thinking.start()

    def add_thinking(self, text: str, tokens: int) -> None:
        if not self.thinking.live and not self._answer_started and text.strip():
            self.thinking.start()
        self.thinking.append(text, tokens)

    def add_answer(self, text: str, tokens: int) -> None:
        if text and not self._answer_started:  # an open tag alone is no answer yet
            self._answer_started = True
            self.thinking.end_thinking()
            if not self.has_thinking():
                self.thinking.hide()
        self._answer.append(text)
        self.answer.append_text(text)

    def add_raw(self, text: str) -> None:
        self._raw.append(text)
        if self.raw_view.isVisible():
            self.raw_view.moveCursor(self.raw_view.textCursor().MoveOperation.End)
            self.raw_view.insertPlainText(text)

    def finish(self, stop_reason: str, ended_in_thinking: bool, stats: dict) -> None:
        """The stream ended: render Markdown, close the thinking, show actions and stats."""
        self.streaming = False
        if self.has_thinking() and (
            ended_in_thinking or (self.thinking.live and not self._answer_started)
        ):
            self.thinking.stop_inside(stop_reason)
        else:
            self.thinking.end_thinking()
        if stats.get("thinking_tokens"):
            self.thinking.set_tokens(int(stats["thinking_tokens"]))  # the engine's count
        self.thinking.setVisible(self.has_thinking())  # whitespace only: no panel at all
        text = self.answer_text()
        if text:
            self.answer.set_markdown(text)
        self.answer.setVisible(bool(text))
        if stop_reason in ("cancelled", "length"):
            self._set_note(PARTIAL_NOTES[stop_reason])
        elif note := ending_note(stats):  # the engine cut the thinking short
            self._set_note(note)
        self._show_actions(stats)

    def _show_actions(self, stats: dict) -> None:
        self.stats.setText(stats_line(stats))
        self.think_harder_button.setVisible(self._can_think_harder)
        self.copy_answer_button.setVisible(bool(self.answer_text()))
        self.copy_thinking_button.setVisible(self.has_thinking())
        self.raw_button.setVisible(bool(self.raw_text()))
        self.action_bar.show()

    def show_error(self, kind: str, message: str, detail: str = "") -> None:
        self.finish("error", self.thinking.live and not self._answer_started, {})
        self.error_card = ErrorCard(kind, message, detail, self)
        self.error_card.sig_reload.connect(self.sig_reload_engine)
        self.error_card.sig_new_chat.connect(self.sig_new_chat)
        self.error_card.sig_drop_turns.connect(self.sig_drop_turns)
        self._layout.insertWidget(self._layout.indexOf(self.note), self.error_card)
        self.error_card.show()  # now, not when the layout's queued show runs

    def show_saved(self, content: str, thinking: str, raw: str, status: str, stats: dict) -> None:
        """Show a message from the store, saying if it is partial or failed."""
        self._raw = [raw]
        self._answer = [content]
        self._answer_started = bool(content)
        if thinking.strip():
            inside = None if content else ("interrupted" if status == "partial" else "stopped")
            if status == "partial" and stats.get("stop_reason"):
                inside = None if content else stats["stop_reason"]
            self.thinking.set_saved(
                thinking, int(stats.get("thinking_tokens", 0)), stats.get("thinking_s"), inside
            )
            self.thinking.show()
        if content:
            self.answer.set_markdown(content)
        self.answer.setVisible(bool(content))
        if status == "partial":
            self._set_note(
                PARTIAL_NOTES.get(stats.get("stop_reason", ""), PARTIAL_NOTES["interrupted"])
            )
        elif status == "complete" and (note := ending_note(stats)):
            self._set_note(note)
        if status == "error" and stats.get("error"):
            err = stats["error"]
            self.error_card = ErrorCard(
                err.get("kind", "internal"), err.get("message", ""), err.get("detail", ""), self
            )
            self.error_card.sig_reload.connect(self.sig_reload_engine)
            self.error_card.sig_new_chat.connect(self.sig_new_chat)
            self.error_card.sig_drop_turns.connect(self.sig_drop_turns)
            self._layout.insertWidget(self._layout.indexOf(self.note), self.error_card)
            self.error_card.show()
        self._show_actions(stats)

    # -- actions -------------------------------------------------------------------------
    def _set_note(self, text: str) -> None:
        self.note.setText(text)
        self.note.show()

    def answer_text(self) -> str:
        return "".join(self._answer)

    def raw_text(self) -> str:
        return "".join(self._raw)

    def thinking_text(self) -> str:
        return self.thinking.text()

    def has_thinking(self) -> bool:
        """Whether there is any thinking to show (whitespace is none)."""
        return bool(self.thinking.text().strip())

    def copy_answer(self) -> None:
        QGuiApplication.clipboard().setText(self.answer_text())

    def copy_thinking(self) -> None:
        QGuiApplication.clipboard().setText(self.thinking_text())

    def show_raw(self, show: bool) -> None:
        if show:
            self.raw_view.setPlainText(self.raw_text())
        self.raw_view.setVisible(show)

    def set_can_regenerate(self, can: bool) -> None:
        self.regenerate_button.setVisible(can)

    def set_route_note(self, text: str) -> None:
        """Auto routing: the plain-text line saying which model answered and why."""
        self.route_note.setText(text)
        self.route_note.setVisible(bool(text))

    def set_can_think_harder(self, can: bool) -> None:
        """Offer Think harder (an Auto-routed small-model answer to the last turn)."""
        self._can_think_harder = can
        self.think_harder_button.setVisible(can and not self.streaming)
