"""The widgets for one message: the user's bubble, and the assistant's card (thinking panel,
answer, raw output, error card, actions).

While an answer streams, its text is appended at the end of the document; Markdown is
rendered once, when the message finishes. Everything shown here is untrusted (model output,
engine and server errors): the answer's document never loads an image or style sheet, links
open only when clicked (http and https only), and labels show their text literally.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QSize, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication, QTextCursor
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.markdown_render import render
from app.ui.safe_text import SafeDocument, blank_image, plain

ERROR_TITLES = {
    "bad_model": "This model could not be loaded",
    "out_of_memory": "Out of memory",
    "context_overflow": "The conversation is too long for the context",
    "engine_crashed": "The engine stopped unexpectedly",
    "engine_hung": "The engine stopped responding",
    "save_failed": "Ponder could not save this chat",
    "bad_request": "The engine refused the request",
    "internal": "Something went wrong in the engine",
}


def _action(text: str, tip: str, parent: QWidget) -> QToolButton:
    b = QToolButton(parent)
    b.setObjectName("Action")
    b.setText(text)
    b.setToolTip(tip)
    b.setCursor(Qt.CursorShape.PointingHandCursor)
    return b


class AnswerView(QTextBrowser):
    """Read-only rich text whose height follows its content (the chat scrolls, not it).

    Its document is a `SafeDocument`: an image or style sheet the answer names is never
    read, fetched or followed."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDocument(SafeDocument(self))
        self.setObjectName("AnswerView")
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.document().setDocumentMargin(2)
        self.document().documentLayout().documentSizeChanged.connect(self._fit)
        self.anchorClicked.connect(self._on_anchor)
        self.code_blocks: list[str] = []
        self._cursor = QTextCursor(self.document())
        self._fit()

    def append_text(self, text: str) -> None:
        self._cursor.movePosition(QTextCursor.MoveOperation.End)
        self._cursor.insertText(text)

    def set_markdown(self, markdown: str) -> None:
        self.code_blocks = render(self.document(), markdown)
        self._cursor = QTextCursor(self.document())

    def _fit(self, *_: object) -> None:
        h = math.ceil(self.document().size().height()) + 2 * self.frameWidth()
        if h != self.height():
            self.setFixedHeight(max(h, 8))

    def sizeHint(self) -> QSize:
        return QSize(400, self.height())

    def loadResource(self, _type: int, _name: QUrl | str) -> object:  # noqa: N802 - Qt's name
        """Never QTextBrowser's file reader: every resource is a blank image."""
        return blank_image()

    def _on_anchor(self, url: QUrl) -> None:
        """Only a click gets here: copy a code block, or open an http(s) link in the browser."""
        if url.scheme() == "copy":
            index = url.path() or url.toString().split(":", 1)[1]
            if index.isdigit() and int(index) < len(self.code_blocks):
                QGuiApplication.clipboard().setText(self.code_blocks[int(index)])
        elif url.scheme() in ("http", "https") and url.isValid():
            QDesktopServices.openUrl(url)


class ErrorCard(QFrame):
    """An engine error in words, with what the person can do about it."""

    sig_reload = Signal()
    sig_new_chat = Signal()
    sig_drop_turns = Signal()

    def __init__(self, kind: str, message: str, detail: str = "", parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("ErrorCard")
        self.kind = kind
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 10, 14, 10)
        title = plain(QLabel(ERROR_TITLES.get(kind, "The engine reported a problem"), self))
        title.setObjectName("ErrorTitle")
        self.message = plain(QLabel(message, self))
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(title)
        layout.addWidget(self.message)
        self.detail = QPlainTextEdit(detail.strip(), self)
        self.detail.setObjectName("ErrorDetail")
        self.detail.setReadOnly(True)
        self.detail.setFixedHeight(110)
        self.detail.hide()
        layout.addWidget(self.detail)
        row = QHBoxLayout()
        self.reload_button = QPushButton("Reload engine", self)
        self.reload_button.setObjectName("Primary")
        self.reload_button.clicked.connect(self.sig_reload)
        row.addWidget(self.reload_button)
        if kind == "context_overflow":
            for label, sig in (
                ("New chat", self.sig_new_chat),
                ("Drop old turns", self.sig_drop_turns),
            ):
                b = QPushButton(label, self)
                b.clicked.connect(sig)
                row.addWidget(b)
        if detail.strip():
            more = _action("Details", "Show what the engine printed", self)
            more.setCheckable(True)
            more.toggled.connect(self.detail.setVisible)
            row.addWidget(more)
        row.addStretch(1)
        layout.addLayout(row)


class UserMessageWidget(QWidget):
    """The user's text in a bubble on the right, with Edit (and resend)."""

    sig_edit_submitted = Signal(int, str)  # message id, new text

    def __init__(self, message_id: int, position: int, text: str, parent=None) -> None:
        super().__init__(parent)
        self.message_id, self.position, self.text = message_id, position, text
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 6, 0, 0)
        outer.setSpacing(2)
        row = QHBoxLayout()
        row.addStretch(1)
        self.bubble = QFrame(self)
        self.bubble.setObjectName("UserBubble")
        bl = QVBoxLayout(self.bubble)
        bl.setContentsMargins(14, 9, 14, 9)
        self.label = QLabel(text, self.bubble)
        self.label.setObjectName("UserText")
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bl.addWidget(self.label)
        self.editor = QPlainTextEdit(text, self.bubble)
        self.editor.setObjectName("ComposerInput")
        self.editor.setFixedHeight(90)
        self.editor.hide()
        bl.addWidget(self.editor)
        row.addWidget(self.bubble)
        outer.addLayout(row)
        actions = QHBoxLayout()
        actions.addStretch(1)
        self.edit_button = _action("Edit", "Edit this message and send it again", self)
        self.edit_button.clicked.connect(self.begin_edit)
        self.send_button = QPushButton("Send", self)
        self.send_button.setObjectName("Primary")
        self.send_button.clicked.connect(self._submit)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.end_edit)
        for w in (self.edit_button, self.cancel_button, self.send_button):
            actions.addWidget(w)
        self.send_button.hide()
        self.cancel_button.hide()
        outer.addLayout(actions)

    def set_max_width(self, width: int) -> None:
        """Bubbles hug short text and wrap long text at `width`."""
        self.bubble.setMaximumWidth(width)
        fm = self.label.fontMetrics()
        longest = max((fm.horizontalAdvance(line) for line in self.text.splitlines()), default=0)
        self.label.setMinimumWidth(min(longest + 4, width - 28))

    def begin_edit(self) -> None:
        self.editor.setPlainText(self.text)
        for w, editing in (
            (self.label, False),
            (self.editor, True),
            (self.edit_button, False),
            (self.send_button, True),
            (self.cancel_button, True),
        ):
            w.setVisible(editing)
        self.editor.setFocus()

    def end_edit(self) -> None:
        for w, normal in (
            (self.label, True),
            (self.editor, False),
            (self.edit_button, True),
            (self.send_button, False),
            (self.cancel_button, False),
        ):
            w.setVisible(normal)

    def _submit(self) -> None:
        text = self.editor.toPlainText().strip()
        if text:
            self.end_edit()
            self.sig_edit_submitted.emit(self.message_id, text)
