"""Markdown for finished answers: QTextDocument.setMarkdown plus four touches.

The answer is untrusted text, so raw HTML in it is shown as the text it is (Qt's HTML would
load the images and style sheets it names, and its Markdown importer drops everything after
an inline `<img>` or `<br>`), and images are never loaded: each becomes its alt text and
address in words (an http(s) image becomes a link the person may click). Fenced code blocks
get a tinted background and a "Copy code" link under them (href `copy:N`, N indexing
`code_blocks`); `\\boxed{…}` answers from math problems are highlighted; LaTeX math is
typeset (app/ui/math_render.py). All are marked in the Markdown with private-use characters
(removed from the answer first, so it cannot forge them) and formatted after rendering.
Runs once per finished message, never per token.
"""

from __future__ import annotations

import re

from PySide6.QtCore import QRegularExpression
from PySide6.QtGui import (
    QColor,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextFormat,
)

from app.ui import theme
from app.ui.math_render import Formula, Typesetter, mark_math, text_colour, typeset

FENCE = re.compile(r"^(```|~~~)[^\n]*\n(.*?)^\1[ \t]*$", re.S | re.M)
BOX_OPEN, BOX_CLOSE, COPY_OPEN, COPY_CLOSE = "\ue000", "\ue001", "\ue002", "\ue003"
MARKERS = re.compile("[\ue000-\ue005]")  # ours, and math_render's
NO_HTML = (
    QTextDocument.MarkdownFeature.MarkdownDialectGitHub
    | QTextDocument.MarkdownFeature.MarkdownNoHTML
)


def _boxed_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, inner) of each \\boxed{…}, with nested braces balanced."""
    spans, i = [], 0
    while (start := text.find("\\boxed{", i)) >= 0:
        depth, j = 0, start + len("\\boxed")
        while j < len(text):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        if depth:
            break
        spans.append((start, j + 1, text[start + len("\\boxed{") : j]))
        i = j + 1
    return spans


def _mark_boxed(text: str) -> str:
    out, last = [], 0
    for start, end, inner in _boxed_spans(text):
        out += [text[last:start], BOX_OPEN, inner, BOX_CLOSE]
        last = end
    out.append(text[last:])
    return "".join(out)


def prepare(markdown: str, formulas: list[Formula] | None = None) -> tuple[str, list[str]]:
    """The Markdown to render (math, boxed and copy links marked) and the code blocks; the
    formulas found are appended to `formulas`."""
    markdown = MARKERS.sub("", markdown)
    formulas = [] if formulas is None else formulas
    blocks: list[str] = []
    parts, last = [], 0
    for m in FENCE.finditer(markdown):
        parts.append(_mark_boxed(mark_math(markdown[last : m.start()], formulas)))
        blocks.append(m.group(2).rstrip("\n"))
        parts.append(m.group(0) + f"\n{COPY_OPEN}{len(blocks) - 1}{COPY_CLOSE}\n")
        last = m.end()
    parts.append(_mark_boxed(mark_math(markdown[last:], formulas)))
    return "".join(parts), blocks


def render(doc: QTextDocument, markdown: str) -> list[str]:
    """Render `markdown` into `doc`; returns the code blocks (for the copy links)."""
    formulas: list[Formula] = []
    text, blocks = prepare(markdown, formulas)
    for old in doc.findChildren(Typesetter):  # an earlier render's formulas still to come
        old.setParent(None)
        old.deleteLater()
    doc.setMarkdown(text, NO_HTML)
    replace_images(doc)  # before the formulas: every image left is one of ours
    _link_copy_markers(doc)
    _highlight_boxed(doc)
    _tint_code_blocks(doc)
    if formulas:
        typeset(doc, formulas, text_colour())
    return blocks


def _link_copy_markers(doc: QTextDocument) -> None:
    """Each copy marker becomes a "Copy code" link to `copy:N`."""
    pattern = QRegularExpression(f"{COPY_OPEN}(\\d+){COPY_CLOSE}")
    cursor = doc.find(pattern)
    while not cursor.isNull():
        index = cursor.selectedText()[1:-1]
        link = QTextCharFormat()
        link.setAnchor(True)
        link.setAnchorHref(f"copy:{index}")
        link.setForeground(QColor(theme.current().accent))
        link.setFontUnderline(True)
        cursor.insertText("Copy code", link)
        cursor = doc.find(pattern, cursor)


def _highlight_boxed(doc: QTextDocument) -> None:
    """Text between boxed markers gets a highlight; the markers become thin spaces."""
    pattern = QRegularExpression(f"{BOX_OPEN}[^{BOX_CLOSE}]*{BOX_CLOSE}")
    box = QTextCharFormat()
    box.setBackground(QColor(theme.current().boxed_bg))
    box.setFontWeight(700)
    cursor = doc.find(pattern)
    while not cursor.isNull():
        start, end = cursor.selectionStart(), cursor.selectionEnd()
        for pos in (end - 1, start):  # the close marker first: positions stay valid
            c = QTextCursor(doc)
            c.setPosition(pos)
            c.setPosition(pos + 1, QTextCursor.MoveMode.KeepAnchor)
            c.insertText("\u00a0")
        cursor.setPosition(start)
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        cursor.mergeCharFormat(box)
        cursor = doc.find(pattern, cursor)
    markers = QRegularExpression("[\ue000-\ue003]")  # not math_render's markers
    stray = doc.find(markers)
    while not stray.isNull():  # a box that spans lines: no highlight, no marker left
        stray.removeSelectedText()
        stray = doc.find(markers, stray)


def _image_words(fmt: QTextFormat) -> tuple[str, str]:
    """What an image is shown as instead, and the link it gets ("" for none)."""
    img = fmt.toImageFormat()
    url = img.name()
    alt = str(img.property(QTextFormat.Property.ImageAltText) or "").strip()
    shown = url if len(url) <= 80 else url[:79] + "…"
    words = f"[image: {alt} — {shown}]" if alt else f"[image: {shown}]"
    link = url if url.lower().startswith(("http://", "https://")) else ""
    return words, link


def replace_images(doc: QTextDocument) -> int:
    """Put words where the document has images (none is ever loaded); returns how many."""
    spans: list[tuple[int, int, QTextFormat]] = []
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            frag = it.fragment()
            if frag.isValid() and frag.charFormat().isImageFormat():
                spans.append((frag.position(), frag.length(), frag.charFormat()))
            it += 1
        block = block.next()
    t = theme.current()
    for pos, length, fmt in reversed(spans):
        words, link = _image_words(fmt)
        plain = QTextCharFormat()
        plain.setForeground(QColor(t.muted))
        plain.setFontItalic(True)
        if link:
            plain.setAnchor(True)
            plain.setAnchorHref(link)
            plain.setFontUnderline(True)
        cursor = QTextCursor(doc)
        cursor.setPosition(pos)
        cursor.setPosition(pos + length, QTextCursor.MoveMode.KeepAnchor)
        cursor.insertText(words * length, plain)
    return len(spans)


def _tint_code_blocks(doc: QTextDocument) -> None:
    """Code blocks get a background; prose gets air between lines and paragraphs."""
    t = theme.current()
    block = doc.begin()
    while block.isValid():
        fmt = block.blockFormat()
        cursor = QTextCursor(block)
        if fmt.hasProperty(QTextFormat.Property.BlockCodeFence) or fmt.nonBreakableLines():
            fmt.setBackground(QColor(t.code_bg))
            fmt.setLeftMargin(6)
            fmt.setRightMargin(6)
            cursor.setBlockFormat(fmt)
        elif cursor.currentTable() is None:
            fmt.setLineHeight(130, QTextBlockFormat.LineHeightTypes.ProportionalHeight.value)
            fmt.setBottomMargin(max(fmt.bottomMargin(), 6))
            cursor.setBlockFormat(fmt)
        block = block.next()


def plain_boxed(text: str) -> list[str]:
    """The contents of every \\boxed{…} in `text` (for tests and copy)."""
    return [inner for _, _, inner in _boxed_spans(text)]
