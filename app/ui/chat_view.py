"""The scrolling list of messages in the middle of the window.

Messages are widgets in a centred column; new ones are appended, never re-created, and the
view sticks to the bottom while it grows unless the person scrolled up. Banners (warnings
with buttons) appear under the last message; an empty state shows when there is none.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.core.chat_store import Message
from app.ui.assistant_message import AssistantMessageWidget
from app.ui.message_widgets import UserMessageWidget

COLUMN_WIDTH = 860


class Banner(QFrame):
    """A notice with buttons, shown under the last message."""

    def __init__(self, text: str, buttons: list[tuple[str, Callable[[], object]]], parent=None):
        super().__init__(parent)
        self.setObjectName("Banner")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 10, 14, 10)
        self.label = QLabel(text, self)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setWordWrap(True)
        layout.addWidget(self.label)
        row = QHBoxLayout()
        self.buttons: dict[str, QPushButton] = {}
        for i, (label, callback) in enumerate(buttons):
            b = QPushButton(label, self)
            if i == 0:
                b.setObjectName("Primary")
            b.clicked.connect(callback)
            row.addWidget(b)
            self.buttons[label] = b
        row.addStretch(1)
        layout.addLayout(row)


class EmptyState(QWidget):
    sig_load_model = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        self.title = QLabel("Ponder", self)
        self.title.setObjectName("EmptyTitle")
        self.text = QLabel(self)  # names the model: shown literally
        self.text.setTextFormat(Qt.TextFormat.PlainText)
        self.text.setObjectName("EmptyText")
        self.text.setWordWrap(True)
        self.load_button = QPushButton("Load model…", self)
        self.load_button.setObjectName("Primary")
        self.load_button.clicked.connect(self.sig_load_model)
        for w in (self.title, self.text):
            w.setAlignment(Qt.AlignmentFlag.AlignCenter)
            layout.addWidget(w)
        layout.addSpacing(10)
        layout.addWidget(self.load_button, 0, Qt.AlignmentFlag.AlignCenter)
        layout.addStretch(3)
        self.set_model(None)

    def set_model(self, name: str | None) -> None:
        if name:
            self.text.setText(
                f"Ask {name} something that needs thinking.\n"
                "Its reasoning streams in a panel you can open and close."
            )
        else:
            self.text.setText(
                "Load a reasoning model (a .gguf file) to start.\nEverything runs on this computer."
            )
        self.load_button.setVisible(not name)


class ChatView(QScrollArea):
    """A column of message widgets; append-only while streaming."""

    sig_edit_submitted = Signal(int, str)
    sig_regenerate = Signal()
    sig_reload_engine = Signal()
    sig_new_chat = Signal()
    sig_drop_turns = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("ChatScroll")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        inner = QWidget()
        outer = QHBoxLayout(inner)
        outer.setContentsMargins(24, 16, 24, 16)
        self.column = QWidget(inner)
        self.column.setMaximumWidth(COLUMN_WIDTH)
        outer.addStretch(1)
        outer.addWidget(self.column, 100)
        outer.addStretch(1)
        self._layout = QVBoxLayout(self.column)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(14)
        self.empty = EmptyState(self.column)
        self._layout.addWidget(self.empty, 10)
        self._layout.addStretch(1)
        self.setWidget(inner)
        self.messages: list[QWidget] = []
        self.banner: QWidget | None = None
        self._follow = True
        bar = self.verticalScrollBar()
        bar.rangeChanged.connect(self._on_range)
        bar.valueChanged.connect(self._on_scroll)

    # -- content -------------------------------------------------------------------------
    def clear(self) -> None:
        for w in self.messages:
            w.setParent(None)
            w.deleteLater()
        self.messages = []
        self.clear_banner()
        self.empty.show()
        self._follow = True

    def _insert(self, widget: QWidget) -> None:
        self.empty.hide()
        index = self._layout.indexOf(self.banner) if self.banner else self._layout.count() - 1
        self._layout.insertWidget(index, widget)
        self.messages.append(widget)
        self._follow = True

    def add_user(self, message_id: int, position: int, text: str) -> UserMessageWidget:
        w = UserMessageWidget(message_id, position, text, self.column)
        w.set_max_width(int(min(self.viewport().width(), COLUMN_WIDTH) * 0.8))
        w.sig_edit_submitted.connect(self.sig_edit_submitted)
        self._insert(w)
        return w

    def add_assistant(
        self, message_id: int, position: int, model: str | None
    ) -> AssistantMessageWidget:
        w = AssistantMessageWidget(message_id, position, model, self.column)
        w.sig_regenerate.connect(self.sig_regenerate)
        w.sig_reload_engine.connect(self.sig_reload_engine)
        w.sig_new_chat.connect(self.sig_new_chat)
        w.sig_drop_turns.connect(self.sig_drop_turns)
        self._insert(w)
        return w

    def show_messages(self, messages: list[Message]) -> None:
        """Show a saved conversation."""
        self.clear()
        for m in messages:
            if m.role == "assistant":
                w = self.add_assistant(m.id, m.position, m.model)
                w.show_saved(m.content, m.thinking, m.raw, m.status, m.stats)
            else:
                self.add_user(m.id, m.position, m.content)
        self.mark_last_assistant()

    def truncate(self, position: int) -> None:
        """Remove the widgets of messages at `position` and after."""
        keep = []
        for w in self.messages:
            if w.position >= position:  # type: ignore[attr-defined]
                w.setParent(None)
                w.deleteLater()
            else:
                keep.append(w)
        self.messages = keep
        self.empty.setVisible(not keep)

    def mark_last_assistant(self) -> None:
        """Only the last answer offers Regenerate."""
        last = self.messages[-1] if self.messages else None
        for w in self.messages:
            if isinstance(w, AssistantMessageWidget):
                w.set_can_regenerate(w is last)

    def last_assistant(self) -> AssistantMessageWidget | None:
        for w in reversed(self.messages):
            if isinstance(w, AssistantMessageWidget):
                return w
        return None

    def user_widgets(self) -> list[UserMessageWidget]:
        return [w for w in self.messages if isinstance(w, UserMessageWidget)]

    # -- banners -------------------------------------------------------------------------
    def show_banner(self, text: str, buttons: list[tuple[str, Callable[[], object]]]) -> Banner:
        self.clear_banner()
        self.banner = Banner(text, buttons, self.column)
        self._layout.insertWidget(self._layout.count() - 1, self.banner)
        self._follow = True
        return self.banner

    def show_widget_banner(self, widget: QWidget) -> None:
        self.clear_banner()
        widget.setParent(self.column)
        self.banner = widget
        self._layout.insertWidget(self._layout.count() - 1, widget)
        self._follow = True

    def clear_banner(self) -> None:
        if self.banner is not None:
            self.banner.setParent(None)
            self.banner.deleteLater()
            self.banner = None

    # -- scrolling -----------------------------------------------------------------------
    def _on_range(self, _min: int, maximum: int) -> None:
        if self._follow:
            self.verticalScrollBar().setValue(maximum)

    def _on_scroll(self, value: int) -> None:
        self._follow = value >= self.verticalScrollBar().maximum() - 40

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        width = int(min(self.viewport().width(), COLUMN_WIDTH) * 0.8)
        for w in self.messages:
            if isinstance(w, UserMessageWidget):
                w.set_max_width(width)
