"""Untrusted text on screen: shown, never followed.

Model answers, model names and GGUF metadata, file names from a Hub mirror, server replies
and error messages are untrusted. Qt treats text that looks like HTML as rich text (QLabel's
default `AutoText`, tooltips, message boxes), and rich text and Markdown load the images and
style sheets they name: `<img src="/dev/zero">` reads until memory runs out, a FIFO hangs the
window, an `http` image would be fetched. So:

- `plain(label)` makes a label show its text literally; `esc(text)` escapes a part that goes
  into a label deliberately rich (a `<b>` heading); `tip(text)` makes a tooltip literal.
- `SafeDocument` is a QTextDocument that answers every resource lookup with a blank image:
  no file, FIFO, device or URL is ever opened for it.

(Qt 6.1's process-wide `QTextDocument.setDefaultResourceProvider` would be a second line of
defence for labels and tooltips, but PySide6 6.11 does not expose it: every label showing
untrusted text must use one of the helpers here.)
"""

from __future__ import annotations

import html
import re

from PySide6 import QtGui
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QImage, QTextCursor, QTextDocument
from PySide6.QtWidgets import QLabel, QMessageBox, QWidget


def blank_image() -> QImage:
    """What every image lookup gets instead of a file: one transparent pixel."""
    img = QImage(1, 1, QImage.Format.Format_ARGB32)
    img.fill(Qt.GlobalColor.transparent)
    return img


class SafeDocument(QTextDocument):
    """A document that names images (Markdown, HTML) but never loads one."""

    def loadResource(self, _type: int, _name: QUrl | str) -> QImage:  # noqa: N802 - Qt's name
        return blank_image()


def plain(label: QLabel) -> QLabel:
    """Show the label's text literally, whatever it looks like; returns the label."""
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


def esc(text: object) -> str:
    """`text` made safe to put inside deliberately rich label text."""
    return html.escape(str(text), quote=True)


def tip(text: str) -> str:
    """A tooltip that shows `text` literally (tooltips guess rich text as labels do)."""
    if not QtGui.Qt.mightBeRichText(text):
        return text
    return '<p style="white-space:pre-wrap">' + esc(text) + "</p>"


def ask(parent: QWidget | None, title: str, text: str) -> bool:
    """A Yes/No question whose text (a model name, a path) is shown literally."""
    box = QMessageBox(QMessageBox.Icon.Question, title, text, parent=parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
    return box.exec() == QMessageBox.StandardButton.Yes


# -- huge text -------------------------------------------------------------------------
# Qt lays out a line without break opportunities in quadratic time (400 KB: 12.5 s) and
# lays out a whole document again on every resize; long text is shown softened and capped.
ZWSP = "\u200b"  # an invisible break opportunity
RUN = 64  # at most this many characters without one
_LONG_RUN = re.compile(rf"[^\s{ZWSP}]{{{RUN}}}(?=[^\s{ZWSP}])")
_TAIL = re.compile(rf"[^\s{ZWSP}]*\Z")


def soften(text: str) -> str:
    """`text` with an invisible break opportunity every RUN characters of a long run."""
    return _LONG_RUN.sub(lambda m: m.group(0) + ZWSP, text)


class StreamSoftener:
    """`soften` for text that arrives in pieces: a run may span pieces."""

    def __init__(self) -> None:
        self.tail = ""  # the run of non-space characters at the end of what was shown

    def feed(self, piece: str) -> str:
        """The softened form of `piece`, to append after what was shown."""
        old = self.tail  # shorter than RUN + 1, so soften leaves it as it is
        soft = soften(old + piece)
        tail = _TAIL.search(soft)  # always matches (it may match nothing)
        self.tail = tail.group(0) if tail else ""
        return soft[len(old) :]


BLOCK = 4_000  # a streamed line without spaces is cut into paragraphs this long


def break_long_line(cursor: QTextCursor) -> None:
    """While streaming, start a new paragraph at the cursor (the end) if its paragraph is a
    long line without spaces: each append lays out the last paragraph again."""
    block = cursor.block()
    if block.length() > BLOCK and not any(c.isspace() for c in block.text()[-BLOCK:]):
        cursor.insertBlock()


def unsoften(text: str) -> str:
    """The text as written (what copying a selection gives)."""
    return text.replace(ZWSP, "")


def shorten(text: str, limit: int) -> tuple[str, bool]:
    """At most `limit` characters of `text`, and whether it was cut."""
    return (text, False) if len(text) <= limit else (text[:limit], True)


def size_words(text: str) -> str:
    """'1.2 MB', '340 KB': how big a text is, for a note."""
    n = len(text.encode("utf-8", "surrogatepass"))
    return f"{n / 1e6:.1f} MB" if n >= 1_000_000 else f"{max(1, round(n / 1000))} KB"
