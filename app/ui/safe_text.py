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

from PySide6 import QtGui
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QImage, QTextDocument
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
