"""Markdown for finished answers: QTextDocument.setMarkdown plus three touches.

Fenced code blocks get a tinted background and a "Copy code" link under them (the link's
href is `copy:N`, N indexing `code_blocks`); `\\boxed{…}` answers from math problems are
highlighted. Runs once per finished message, never per token.
"""

from __future__ import annotations

import html
import re

from PySide6.QtGui import QColor, QTextBlockFormat, QTextCursor, QTextDocument, QTextFormat

from app.ui import theme

FENCE = re.compile(r"^(```|~~~)[^\n]*\n(.*?)^\1[ \t]*$", re.S | re.M)


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


def _highlight_boxed(text: str) -> str:
    t = theme.current()
    out, last = [], 0
    for start, end, inner in _boxed_spans(text):
        out.append(text[last:start])
        out.append(
            f'<span style="background-color:{t.boxed_bg}; font-weight:700;">'
            f"&nbsp;{html.escape(inner)}&nbsp;</span>"
        )
        last = end
    out.append(text[last:])
    return "".join(out)


def prepare(markdown: str) -> tuple[str, list[str]]:
    """The markdown to render (boxed highlighted, copy links added) and the code blocks."""
    blocks: list[str] = []
    parts, last = [], 0
    for m in FENCE.finditer(markdown):
        parts.append(_highlight_boxed(markdown[last : m.start()]))
        blocks.append(m.group(2).rstrip("\n"))
        parts.append(m.group(0) + f'\n<a href="copy:{len(blocks) - 1}">Copy code</a>\n')
        last = m.end()
    parts.append(_highlight_boxed(markdown[last:]))
    return "".join(parts), blocks


def render(doc: QTextDocument, markdown: str) -> list[str]:
    """Render `markdown` into `doc`; returns the code blocks (for the copy links)."""
    text, blocks = prepare(markdown)
    doc.setMarkdown(text)
    _tint_code_blocks(doc)
    return blocks


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
