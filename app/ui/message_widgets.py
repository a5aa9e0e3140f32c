"""The widgets for one message: the user's bubble, and the assistant's card (thinking panel,
answer, raw output, error card, actions).

While an answer streams, its text is appended at the end of the document; Markdown is
rendered once, when the message finishes. Everything shown here is untrusted (model output,
engine and server errors): the answer's document never loads an image or style sheet, links
open only when clicked (http and https only), and labels show their text literally.
"""

from __future__ import annotations

import math
import re

from PySide6.QtCore import QMimeData, QSize, Qt, QUrl, Signal
from PySide6.QtGui import (
    QDesktopServices,
    QGuiApplication,
    QPalette,
    QTextCharFormat,
    QTextCursor,
)
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
from app.ui.math_render import source_of
from app.ui.safe_text import (
    ZWSP,
    SafeDocument,
    StreamSoftener,
    blank_image,
    break_long_line,
    plain,
    shorten,
    size_words,
    soften,
    unsoften,
)

# Qt lays out a whole answer again on every resize, and a line without spaces in quadratic
# time: a longer answer (or one with a line longer than LONG_LINE) is shown as plain text,
# softened, its first SHOWN_LIMIT characters only (measured: see tests/test_ui_untrusted_text).
SHOWN_LIMIT = 100_000
BUBBLE_LIMIT = 20_000  # a word-wrapped label is laid out several times per resize
LONG_LINE = re.compile(r"[^\s]{2000}")

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
        self._softener = StreamSoftener()
        self._streamed = 0  # characters received while streaming (shown: SHOWN_LIMIT at most)
        self._fit()

    def append_text(self, text: str) -> None:
        """Append streamed text: softened, and no more than SHOWN_LIMIT characters."""
        room = SHOWN_LIMIT - self._streamed
        self._streamed += len(text)
        if room <= 0:
            return
        self._cursor.movePosition(QTextCursor.MoveOperation.End)
        break_long_line(self._cursor)
        self._cursor.insertText(self._softener.feed(text[:room]))
        if len(text) > room:
            self._cursor.insertText(" …")

    def set_markdown(self, markdown: str) -> None:
        """Show a finished answer: Markdown, or for a huge one, its start as plain text."""
        self._softener, self._streamed = StreamSoftener(), 0
        self.ensurePolished()  # the style sheet's font first: formulas are typeset in its size
        if len(markdown) <= SHOWN_LIMIT and not LONG_LINE.search(markdown):
            self.code_blocks = render(self.document(), markdown)
        else:
            self.code_blocks = []
            shown, cut = shorten(markdown, SHOWN_LIMIT)
            self.document().setPlainText(soften(shown))
            self._add_note(
                f"This answer is {size_words(markdown)}"
                + (f": the first {SHOWN_LIMIT:,} characters are shown" if cut else "")
                + ", as plain text. Copy answer copies all of it."
            )
        self._cursor = QTextCursor(self.document())

    def _add_note(self, text: str) -> None:
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        fmt = QTextCharFormat()
        fmt.setFontItalic(True)
        fmt.setForeground(self.palette().color(QPalette.ColorRole.PlaceholderText))
        cursor.insertBlock()
        cursor.insertText(text, fmt)

    def createMimeDataFromSelection(self) -> QMimeData:  # noqa: N802 - Qt's name
        """A copied selection has none of the invisible break opportunities, and its
        typeset formulas are given back as the LaTeX they were written in."""
        text = self.textCursor().selection().toPlainText()
        if "\ufffc" in text:
            text = source_of(self.textCursor())
        elif ZWSP not in text:
            return super().createMimeDataFromSelection()
        data = QMimeData()
        data.setText(unsoften(text))
        return data

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


def _bubble_text(text: str) -> str:
    """What the bubble shows: a huge message's start only (Edit shows all of it)."""
    shown, cut = shorten(text, BUBBLE_LIMIT)
    if not cut:
        return soften(text)
    return (
        soften(shown) + f" …\n\n(This message is {size_words(text)}: the first "
        f"{BUBBLE_LIMIT:,} characters are shown; Edit shows all of it.)"
    )


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
        self.label = QLabel(_bubble_text(text), self.bubble)
        self.label.setObjectName("UserText")
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bl.addWidget(self.label)
        self.editor = QPlainTextEdit(self.bubble)  # filled by begin_edit
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
        lines = self.label.text().splitlines()
        longest = max((fm.horizontalAdvance(line) for line in lines), default=0)
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
