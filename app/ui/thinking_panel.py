"""The collapsible chain-of-thought panel above each answer.

While the model thinks the panel is open and the reasoning streams in live, with a header
like "Thinking… 14 s · 612 tokens"; when the answer starts it collapses to "Thought for
38 s · 1,843 tokens" and a click opens it again. If the stream ends inside the thinking
(length limit, Stop, a crash) it stays open and says so. Text is appended at the end of the
document, never re-set, so each token costs the same however long the thinking gets.
Long runs without spaces get invisible break opportunities (Qt lays such a line out in
quadratic time) and at most SHOWN_LIMIT characters are shown; `text()` is all of it.
When the thinking ends, its LaTeX math is typeset (app/ui/math_render.py) in a rich-text
view that takes the plain one's place; while it streams, nothing is typeset.
"""

from __future__ import annotations

import math
import time

from PySide6.QtCore import QMimeData, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import (
    QFrame,
    QPlainTextEdit,
    QSizePolicy,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.ui import theme
from app.ui.math_render import find_math, source_of, typeset_plain
from app.ui.safe_text import (
    SafeDocument,
    StreamSoftener,
    blank_image,
    break_long_line,
    shorten,
    size_words,
    soften,
    unsoften,
)

PROSE_BLOCK = 1_500  # characters of a streamed paragraph before it is shown in pieces
# A piece's block carries, as its user state, the number of spaces it was shown without
# (0: a display-only break with nothing removed); other blocks have Qt's -1.
SENTENCE_ENDS = (".", "!", "?", ":", ";")
LIVE_HEIGHT = 220  # the live panel shows the last lines, scrolling
OPEN_HEIGHT = 360  # at most this tall when opened after the fact
SHOWN_LIMIT = 200_000  # characters shown; Copy thinking copies all

STOP_WORDS = {
    "length": "the length limit was reached",
    "cancelled": "stopped",
    "error": "the engine failed",
    "interrupted": "interrupted",
}


def _count(n: int) -> str:
    return f"{n:,} token" + ("" if n == 1 else "s")


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s} s" if s < 60 else f"{s // 60} min {s % 60:02d} s"


def written_text(cursor: QTextCursor) -> str:
    """The selected text as it was written: the display-only breaks between the pieces of a
    long streamed paragraph become the spaces they replaced, and nothing else."""
    start, end = cursor.selectionStart(), cursor.selectionEnd()
    block = cursor.document().findBlock(start)
    out: list[str] = []
    while block.isValid() and block.position() <= end:
        at = block.position()
        if out:  # the break before this block was selected too
            state = block.userState()
            out.append(" " * state if state >= 0 else "\n")
        out.append(block.text()[max(start, at) - at : min(end, at + block.length() - 1) - at])
        block = block.next()
    return unsoften("".join(out))


class ThinkingBody(QPlainTextEdit):
    """The live thinking: a copied selection gives the text as written."""

    def createMimeDataFromSelection(self) -> QMimeData:  # noqa: N802 - Qt's name
        data = QMimeData()
        data.setText(written_text(self.textCursor()))
        return data


class MathThinkingView(QTextBrowser):
    """The finished thinking with its formulas typeset: a SafeDocument (no resource but the
    typeset formulas is ever loaded); a copied selection gives the formulas' LaTeX."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDocument(SafeDocument(self))
        self.setObjectName("ThinkingBody")
        self.setOpenLinks(False)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def show_text(self, text: str) -> bool:
        """Show `text` (plain, softened) with its math typeset; False if it has none."""
        self.ensurePolished()  # the style sheet's font: formulas are typeset in its size
        self.document().setPlainText(text)
        return typeset_plain(self.document(), theme.current().muted) is not None

    def createMimeDataFromSelection(self) -> QMimeData:  # noqa: N802 - Qt's name
        data = QMimeData()
        data.setText(unsoften(source_of(self.textCursor())))
        return data

    def loadResource(self, _type: int, _name: QUrl | str) -> object:  # noqa: N802 - Qt's name
        """Never QTextBrowser's file reader: every resource is a blank image."""
        return blank_image()


class ThinkingPanel(QFrame):
    """Header button + read-only text; `start`, `append`, `finish` drive it while streaming."""

    sig_toggled = Signal(bool)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("ThinkingPanel")
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.header = QToolButton(self)
        self.header.setObjectName("ThinkingHeader")
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setCursor(Qt.CursorShape.PointingHandCursor)
        self.header.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.header.clicked.connect(self.toggle)
        self.body = ThinkingBody(self)
        self.body.setObjectName("ThinkingBody")
        self.body.setReadOnly(True)
        self.body.setFrameShape(QFrame.Shape.NoFrame)
        self.body.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.body.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.body.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 4)
        layout.setSpacing(0)
        layout.addWidget(self.header)
        layout.addWidget(self.body)
        self._box = layout
        self.math_view: MathThinkingView | None = None  # made when a finished thinking has math
        self._math_shown = False
        self._cursor = QTextCursor(self.body.document())
        self._parts: list[str] = []
        self._softener = StreamSoftener()
        self._shown = 0
        self.tokens = 0
        self.live = False
        self.seconds: float | None = None
        self.ended_inside: str | None = None  # why the stream ended inside the thinking
        self._t0 = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(500)
        self._timer.timeout.connect(self._update_header)
        self.set_open(False)
        self._update_header()

    # -- streaming -----------------------------------------------------------------------
    def start(self) -> None:
        self.live, self._t0 = True, time.monotonic()  # tokens counted before (blank) stay
        self._math_shown = False
        self.show()
        self.set_open(True)
        self._timer.start()
        self._update_header()

    def append(self, text: str, tokens: int) -> None:
        bar = self.body.verticalScrollBar()
        follow = bar.value() >= bar.maximum() - 4
        if text:
            self._parts.append(text)
            self._show_more(text)
        self.tokens += tokens
        if self.live and self.body.height() < LIVE_HEIGHT:
            self.body.setFixedHeight(min(LIVE_HEIGHT, self._open_height()))
        if follow:
            bar.setValue(bar.maximum())
        self._update_header()

    def _show_more(self, text: str) -> None:
        room = SHOWN_LIMIT - self._shown
        self._shown += len(text)
        if room > 0:
            self._cursor.movePosition(QTextCursor.MoveOperation.End)
            line = self._cursor.blockNumber()
            break_long_line(self._cursor)
            if self._cursor.blockNumber() != line:
                self._cursor.block().setUserState(0)  # a display-only break
            block = self._cursor.block()
            if block.length() > PROSE_BLOCK and block.text().rstrip().endswith(SENTENCE_ENDS):
                # Qt lays the whole last paragraph out again on every append: a long
                # paragraph is shown in pieces at sentence ends (display only; copying
                # and saving use the text as written)
                self._cursor.insertBlock()
                self._cursor.block().setUserState(0)
            shown = self._softener.feed(text[:room]) + (" …" * (len(text) > room))
            block = self._cursor.block()
            if block.userState() >= 0 and block.length() == 1:
                # a piece starts at its sentence, without the space before it (kept in the
                # block's state: a copied selection gives it back)
                lead = len(shown) - len(shown.lstrip(" "))
                block.setUserState(block.userState() + lead)
                shown = shown[lead:]
            self._cursor.insertText(shown)

    def set_tokens(self, tokens: int) -> None:
        self.tokens = tokens
        self._update_header()

    def end_thinking(self) -> None:
        """The answer started: stop the clock and collapse."""
        if not self.live:
            return
        self.live = False
        self._timer.stop()
        self.seconds = time.monotonic() - self._t0
        self._typeset()
        self.set_open(False)
        self._update_header()

    def stop_inside(self, reason: str) -> None:
        """The stream ended while still thinking: say so and keep the panel open."""
        self.seconds = time.monotonic() - self._t0 if self.live else self.seconds
        self.live = False
        self._timer.stop()
        self.ended_inside = reason
        self._typeset()
        self.set_open(True)
        self._update_header()

    def set_saved(
        self, text: str, tokens: int, seconds: float | None, ended_inside: str | None
    ) -> None:
        """Show a saved message's thinking."""
        self._parts, self._shown = [text], len(text)
        shown, cut = shorten(text, SHOWN_LIMIT)
        note = f" …\n\n(The thinking is {size_words(text)}; its start is shown.)" if cut else ""
        self.body.setPlainText(soften(shown) + note)
        self._cursor = QTextCursor(self.body.document())
        self._typeset()
        self.tokens, self.seconds, self.ended_inside, self.live = (
            tokens,
            seconds,
            ended_inside,
            False,
        )
        self.set_open(ended_inside is not None)
        self._update_header()

    def _typeset(self) -> None:
        """Show the finished thinking with its math typeset, if it has any."""
        whole = QTextCursor(self.body.document())
        whole.select(QTextCursor.SelectionType.Document)
        text = soften(written_text(whole))  # the pieces of a long paragraph joined again
        self._math_shown = False
        if find_math(text):
            if self.math_view is None:
                self.math_view = MathThinkingView(self)
                self.math_view.hide()
                self._box.addWidget(self.math_view)
            self._math_shown = self.math_view.show_text(text)
        if not self._math_shown and self.math_view is not None:
            self.math_view.hide()

    def view(self) -> QPlainTextEdit | QTextBrowser:
        """What shows the thinking: the plain view, or once finished the one with math."""
        if self._math_shown and not self.live and self.math_view is not None:
            return self.math_view
        return self.body

    # -- look ----------------------------------------------------------------------------
    def toggle(self) -> None:
        self.set_open(not self.is_open)
        self.sig_toggled.emit(self.is_open)

    @property
    def is_open(self) -> bool:
        return not self.view().isHidden()

    def set_open(self, open_: bool) -> None:
        view = self.view()
        for other in (self.body, self.math_view):
            if other is not None and other is not view:
                other.hide()
        view.setVisible(open_)
        view.setFixedHeight(self._open_height())
        self.header.setArrowType(Qt.ArrowType.DownArrow if open_ else Qt.ArrowType.RightArrow)
        self.updateGeometry()

    def _open_height(self) -> int:
        if self.view() is self.math_view and self.math_view is not None:
            doc = self.math_view.document()  # formulas are taller than lines: measure it
            doc.setTextWidth(max(200, self.width() - 12))
            tall = math.ceil(doc.size().height()) + 8
            return max(40, min(OPEN_HEIGHT, tall))
        doc = self.body.document()
        lines = 0
        block = doc.begin()
        while block.isValid() and lines < 40:
            lines += max(1, block.layout().lineCount())
            block = block.next()
        line_h = self.body.fontMetrics().lineSpacing()
        return max(40, min(LIVE_HEIGHT if self.live else OPEN_HEIGHT, lines * line_h + 16))

    def header_text(self) -> str:
        tokens = _count(self.tokens)
        if self.live:
            return f"Thinking… {_duration(time.monotonic() - self._t0)} · {tokens}"
        took = f"{_duration(self.seconds)} · " if self.seconds is not None else ""
        if self.ended_inside:
            why = STOP_WORDS.get(self.ended_inside, self.ended_inside)
            return f"Ended while thinking ({why}) · {took}{tokens}"
        if self.seconds is not None:
            return f"Thought for {_duration(self.seconds)} · {tokens}"
        return f"Thought · {tokens}"

    def _update_header(self) -> None:
        text = self.header_text()
        if text != self.header.text():
            self.header.setText(text)

    def text(self) -> str:
        """All of the thinking, as the model wrote it."""
        return "".join(self._parts)
