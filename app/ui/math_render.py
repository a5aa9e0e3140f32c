"""LaTeX math in answers and in the thinking, typeset into the Qt text document (no web engine).

R1-family models write `$…$`, `$$…$$`, `\\(…\\)`, `\\[…\\]` and `\\boxed{…}`. `mark_math` finds
them in Markdown source (not in code) and puts a private-use marker in their place, so the
Markdown importer cannot mangle them (`_`, `*`, `\\\\`); `typeset` then swaps each marker for
its source text and, formula by formula, for an image rendered by ziamath (pure-Python LaTeX
to SVG with its own STIX Two Math font) and rasterised by QSvgRenderer, in the text's colour
and size, aligned on the text's baseline. A formula that does not render stays its source.

Images are added with `QTextDocument.addResource` under `ponder-math:<hash>` names that only
this module makes, after the document's own images were replaced by words; model text never
names a resource that is loaded (SafeDocument answers every other lookup with a blank pixel).
Each image keeps its LaTeX source (`SOURCE`) for copying and as a tooltip. Rendering happens
once per finished message, never per token: at most BUDGET_S at once, the rest on a timer.
"""

from __future__ import annotations

import copy
import hashlib
import re
import threading
import time
import warnings
import xml.etree.ElementTree as ET
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QByteArray, QObject, QRectF, QRegularExpression, Qt, QTimer, QUrl
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontInfo,
    QFontMetrics,
    QGuiApplication,
    QImage,
    QPainter,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextFormat,
    QTextImageFormat,
)
from PySide6.QtSvg import QSvgRenderer

from app.ui.safe_text import ZWSP, tip

SCHEME = "ponder-math"
MATH_OPEN, MATH_CLOSE = "\ue004", "\ue005"
MARKER = re.compile(f"{MATH_OPEN}(\\d+){MATH_CLOSE}")
SOURCE = int(QTextFormat.Property.UserProperty) + 0x4D0  # an image's LaTeX source, as written
PENDING = SOURCE + 1  # on source text still to typeset: the formula's index
BUDGET_S = 0.03  # typeset at most this long at once; the rest follows on a 0 ms timer
CACHE_SIZE = 2000
# STIX Two's x-height is small beside the UI's sans serif: math is drawn larger (KaTeX: 1.21)
INLINE_SCALE, DISPLAY_SCALE = 1.2, 1.3

_NO_BLANK = r"(?:(?!\n[ \t]*\n).)"  # any character, but a formula never spans a blank line
SCAN = re.compile(
    r"(?P<code>(`+).*?(?<!`)\2(?!`))"  # inline code: left alone
    rf"|\$\$(?P<dd>{_NO_BLANK}+?)\$\$"
    rf"|\\\[(?P<bd>{_NO_BLANK}+?)\\\]"
    rf"|\\\((?P<pi>{_NO_BLANK}+?)\\\)"
    # $…$ as pandoc reads it: no space inside the dollars, no digit right after ($5 and $10)
    r"|(?<![\\$\w])\$(?P<di>[^\s$](?:[^$\n]*?[^\s$\\])?)\$(?!\d)",
    re.S,
)
HTML_TAG = re.compile(r"<\s*/?\s*[A-Za-z!][^>]*>")  # raw HTML in a formula: left as source
UNKNOWN = re.compile(r">\\[A-Za-z]")  # latex2mathml leaves an unknown command as its name
LATEX_HINT = re.compile(r"[\\^_{}]")  # a bare \boxed{…} with LaTeX in it is typeset


@dataclass(frozen=True)
class Formula:
    """One formula: its source as written (delimiters included), the LaTeX, display or not."""

    source: str
    tex: str
    display: bool


@dataclass(frozen=True)
class Rendered:
    """A typeset formula: the image and its size in logical pixels, and how to align it."""

    image: QImage
    width: float
    height: float
    align: QTextCharFormat.VerticalAlignment


_cache: OrderedDict[tuple, Rendered | None] = OrderedDict()
_loader: threading.Thread | None = None


def _merged(attrib: dict, parent: dict) -> dict:
    """`ChainMap(attrib, parent)` as one dict: parse_style only reads it, and a ChainMap's
    lookups are Python code run ~70 times a formula."""
    return {**parent, **attrib}


def _height_nostretch(self: Any, line: list, **kwargs: Any) -> tuple[float, float]:
    """ziamath's Mrow._get_height_nostretch with the child copied by `copy.deepcopy` (C code)
    instead of serialising it to XML text and parsing it back."""
    from ziamath.nodes.mnode import Mnode
    from ziamath.nodes.nodetools import elementtext

    ymax, ymin = -9999.0, 9999.0
    kwargs["nostretch"] = True  # children leave stretchy operators out of their box
    for child in line:
        if child.tag == "mo" and elementtext(child) == "":
            continue
        node = Mnode.fromelement(copy.deepcopy(child), parent=self, **kwargs)
        ymax, ymin = max(ymax, node.bbox.ymax), min(ymin, node.bbox.ymin)
    return ymin, ymax


def _memoised_size_px(size_px: Callable[..., float]) -> Callable[..., float]:
    """Mnode.size_px remembered per (size, font size): it builds two dicts and parses a
    string per call, ~100 calls a formula, for a handful of distinct answers."""
    memo: dict[tuple[Any, float], float] = {}

    def cached(self: Any, size: Any, fontsize: float | None = None) -> float:
        key = (size, self.glyphsize if fontsize is None else fontsize)
        if key not in memo:
            memo[key] = size_px(self, *key)
        return memo[key]

    return cached


ORIGINALS: dict[str, Any] = {}  # what _load replaced, for tests that compare the drawing


def _load() -> None:
    import ziamath  # reads its font: ~0.4 s, on a thread so the window never waits
    import ziamath.styles
    from ziamath.nodes.mnode import Mnode
    from ziamath.nodes.mrow import Mrow

    ziamath.config.svg2 = False  # plain paths: QtSvg (SVG Tiny) draws no <symbol>/<use href>
    # Typesetting time halves with these four (bench/math_render.py: median 6.5 -> 3.7 ms of
    # CPU a formula on a busy machine), drawing the same SVG for every formula of the set
    # (tests/test_math_render.py). parse_style deep-copied the parent's style
    # (dataclasses.asdict) for every node: vars() is enough, as _merged copies it.
    ORIGINALS.update(asdict=ziamath.styles.asdict, ChainMap=ziamath.styles.ChainMap,
                     size_px=Mnode.size_px, nostretch=Mrow._get_height_nostretch)  # fmt: skip
    setattr(ziamath.styles, "asdict", vars)  # noqa: B010 - typed as dataclasses.asdict
    setattr(ziamath.styles, "ChainMap", _merged)  # noqa: B010 - typed as a class
    setattr(Mnode, "size_px", _memoised_size_px(Mnode.size_px))  # noqa: B010
    setattr(Mrow, "_get_height_nostretch", _height_nostretch)  # noqa: B010


def ready(wait: bool = False) -> bool:
    """Whether ziamath is imported; starts importing it on a thread (or waits for it)."""
    global _loader
    if _loader is None:
        _loader = threading.Thread(target=_load, name="ponder-math-load", daemon=True)
        _loader.start()
    if wait:
        _loader.join()
    return not _loader.is_alive()


# -- finding math ----------------------------------------------------------------------------
def _bare_boxed(text: str) -> list[tuple[int, int]]:
    """(start, end) of each `\\boxed{…}` (nested braces balanced) whose content is LaTeX."""
    spans, i = [], 0
    while (start := text.find("\\boxed{", i)) >= 0:
        depth, j = 0, start + len("\\boxed")
        while j < len(text) and (depth or j == start + len("\\boxed")):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        if depth:
            break
        if LATEX_HINT.search(text[start + len("\\boxed{") : j - 1]):
            spans.append((start, j))
        i = j
    return spans


def find_math(text: str) -> list[tuple[int, int, Formula]]:
    """(start, end, formula) of each formula in `text`, outside inline code."""
    if "$" not in text and "\\" not in text:  # most thinking: no scan at all
        return []
    found: list[tuple[int, int, Formula]] = []
    last = 0

    def boxed_between(a: int, b: int) -> None:
        for s, e in _bare_boxed(text[a:b]):
            src = text[a + s : a + e]
            found.append((a + s, a + e, Formula(src, src, False)))

    for m in SCAN.finditer(text):
        if m.group("code") is not None:
            boxed_between(last, m.start())
            last = m.end()
            continue
        tex = next(g for g in (m["dd"], m["bd"], m["pi"], m["di"]) if g is not None)
        if not tex.strip():
            continue
        boxed_between(last, m.start())
        display = m["dd"] is not None or m["bd"] is not None
        found.append((m.start(), m.end(), Formula(m.group(0), tex.strip(), display)))
        last = m.end()
    boxed_between(last, len(text))
    return found


def mark_math(text: str, formulas: list[Formula]) -> str:
    """`text` with each formula replaced by a marker naming its index in `formulas`."""
    out, last = [], 0
    for start, end, formula in find_math(text):
        out += [text[last:start], f"{MATH_OPEN}{len(formulas)}{MATH_CLOSE}"]
        formulas.append(formula)
        last = end
    out.append(text[last:])
    return "".join(out)


# -- rendering -------------------------------------------------------------------------------
def _ratio() -> float:
    screen = QGuiApplication.primaryScreen()
    return max(1.0, screen.devicePixelRatio()) if screen is not None else 1.0


def _svg(tex: str, display: bool, size: float, colour: str) -> tuple[str, float, float]:
    """The SVG of `tex`, its ascent and descent in pixels (ValueError when it does not parse)."""
    import ziamath
    from ziamath.tex import tex2mml

    ready(wait=True)

    if HTML_TAG.search(tex) or "\\tag" in tex:
        raise ValueError("not typeset")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mathml = tex2mml(tex.replace(ZWSP, ""), inline=not display)
        if UNKNOWN.search(mathml):
            raise ValueError("unknown command")
        element = ET.fromstring(mathml)
        element.attrib["mathcolor"] = colour
        math = ziamath.Math(element, size=size, margin=1.0)
        svg = math.svg()
    ymin, ymax = math.node.bbox.ymin, math.node.bbox.ymax
    return svg, ymax + 1.0, -ymin + 1.0


def render(tex: str, display: bool, font: QFont, colour: str) -> Rendered | None:
    """`tex` typeset in `font`'s size and `colour` (cached), or None if it does not render."""
    px = QFontInfo(font).pixelSize() * (DISPLAY_SCALE if display else INLINE_SCALE)
    metrics = QFontMetrics(font)
    ratio = _ratio()
    key = (tex, display, px, colour, ratio, metrics.descent(), metrics.xHeight())
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    try:
        result: Rendered | None = _rasterise(*_svg(tex, display, px, colour), metrics, ratio)
    except Exception:  # noqa: BLE001 - any failure leaves the formula as its source
        result = None
    _cache[key] = result
    if len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)
    return result


def _rasterise(
    svg: str, ascent: float, descent: float, metrics: QFontMetrics, ratio: float
) -> Rendered | None:
    """Paint the SVG into an image padded so its baseline falls on the text's baseline.

    Qt puts an AlignBaseline image's bottom the font's descent below the baseline, and an
    AlignMiddle image's centre half an x-height above it (QTextDocumentLayout)."""
    renderer = QSvgRenderer(QByteArray(svg.encode("utf-8")))
    if not renderer.isValid():
        return None
    width = renderer.viewBoxF().width()
    top = bottom = 0.0
    if descent <= metrics.descent():
        align = QTextCharFormat.VerticalAlignment.AlignBaseline
        bottom = metrics.descent() - descent
    else:
        align = QTextCharFormat.VerticalAlignment.AlignMiddle
        shift = ascent - descent - metrics.xHeight() / 2
        bottom, top = max(shift, 0.0), max(-shift, 0.0)
    height = ascent + descent + top + bottom
    image = QImage(
        max(1, round(width * ratio)),
        max(1, round(height * ratio)),
        QImage.Format.Format_ARGB32_Premultiplied,
    )
    image.fill(Qt.GlobalColor.transparent)
    image.setDevicePixelRatio(ratio)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, top, width, ascent + descent))
    painter.end()
    return Rendered(image, width, height, align)


# -- into the document -----------------------------------------------------------------------
def _image_format(
    doc: QTextDocument, shape: Rendered, source: str, font: QFont
) -> QTextImageFormat:
    name = f"{SCHEME}:" + hashlib.sha1(bytes(shape.image.constBits())).hexdigest()[:20]
    doc.addResource(QTextDocument.ResourceType.ImageResource, QUrl(name), shape.image)
    fmt = QTextImageFormat()
    fmt.setName(name)
    fmt.setWidth(shape.width)
    fmt.setHeight(shape.height)
    fmt.setFont(font)  # Qt aligns the image by this font's metrics
    fmt.setVerticalAlignment(shape.align)
    fmt.setProperty(SOURCE, source)
    fmt.setToolTip(tip(source))
    return fmt


def _pending(doc: QTextDocument) -> list[tuple[int, int, int]]:
    """(position, length, formula index) of source text still to typeset, last first."""
    spans = []
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            frag = it.fragment()
            if frag.isValid() and frag.charFormat().hasProperty(PENDING):
                index = int(frag.charFormat().property(PENDING))
                spans.append((frag.position(), frag.length(), index))
            it += 1
        block = block.next()
    return spans[::-1]


class Typesetter(QObject):
    """Turns a document's formulas into images, BUDGET_S at a time (a child of the document:
    it goes with it, and a new `typeset` of the same document stops the old one)."""

    def __init__(self, doc: QTextDocument, formulas: list[Formula], colour: str) -> None:
        super().__init__(doc)
        self.setObjectName("ponder-math-typesetter")
        self.doc, self.formulas, self.colour = doc, formulas, colour
        self.rendered = self.failed = 0

    def step(self) -> bool:
        """Typeset for up to BUDGET_S; True when every formula is done."""
        if not ready():
            QTimer.singleShot(40, self, self._more)
            return False
        deadline = time.perf_counter() + BUDGET_S
        for pos, length, index in _pending(self.doc):
            cursor = QTextCursor(self.doc)
            cursor.setPosition(pos)
            cursor.setPosition(pos + length, QTextCursor.MoveMode.KeepAnchor)
            fmt = cursor.charFormat()
            formula = self.formulas[index]
            shape = render(formula.tex, formula.display, fmt.font(), self.colour)
            if shape is None:
                fmt.clearProperty(PENDING)
                cursor.setCharFormat(fmt)
                self.failed += 1
            else:
                cursor.insertImage(_image_format(self.doc, shape, formula.source, fmt.font()))
                self.rendered += 1
            if time.perf_counter() > deadline:
                QTimer.singleShot(0, self, self._more)
                return False
        return True

    def _more(self) -> None:
        self.step()

    def finish(self) -> None:
        """Typeset everything left now (tests, screenshots)."""
        ready(wait=True)
        while not self.step():
            pass


def typeset(doc: QTextDocument, formulas: list[Formula], colour: str) -> Typesetter:
    """Swap the document's markers for their formulas: source text at once, images within
    BUDGET_S and the rest on a timer. Display formulas go on a line of their own."""
    for old in doc.findChildren(Typesetter):
        old.setParent(None)
        old.deleteLater()
    pattern = QRegularExpression(MARKER.pattern)
    cursor = doc.find(pattern)
    while not cursor.isNull():
        index = int(cursor.selectedText()[1:-1])
        formula = formulas[index]
        fmt = cursor.charFormat()
        fmt.setProperty(PENDING, index)
        if formula.display:
            _own_line(cursor)
        cursor.insertText(formula.source.replace("\n", " "), fmt)
        cursor = doc.find(pattern, cursor)
    setter = Typesetter(doc, formulas, colour)
    setter.step()
    return setter


def _own_line(cursor: QTextCursor) -> None:
    """Centre a display formula alone in its paragraph, or give it a line of its own."""
    block = cursor.block()
    start, end = cursor.selectionStart(), cursor.selectionEnd()
    before = block.text()[: start - block.position()].strip()
    after = block.text()[end - block.position() :].strip()
    if not before and not after and cursor.currentList() is None and not cursor.currentTable():
        fmt = QTextBlockFormat(block.blockFormat())
        fmt.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        cursor.setBlockFormat(fmt)
        return
    if after:
        c = QTextCursor(cursor)
        c.setPosition(end)
        c.insertText("\u2028")
    if before:
        c = QTextCursor(cursor)
        c.setPosition(start)
        c.insertText("\u2028")
    cursor.setPosition(start + bool(before))
    cursor.setPosition(end + bool(before), QTextCursor.MoveMode.KeepAnchor)


def typeset_plain(doc: QTextDocument, colour: str) -> Typesetter | None:
    """Typeset the formulas of a plain-text document (the thinking); None if it has none."""
    found = find_math(doc.toPlainText())
    if not found:
        return None
    for index in reversed(range(len(found))):  # from the end: positions stay valid
        start, end, _ = found[index]
        cursor = QTextCursor(doc)
        cursor.setPosition(start)
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        cursor.insertText(f"{MATH_OPEN}{index}{MATH_CLOSE}")
    return typeset(doc, [formula for _, _, formula in found], colour)


def source_of(selection: QTextCursor) -> str:
    """The selected text with each formula image given back as its LaTeX source."""
    doc = selection.document()
    start, end = selection.selectionStart(), selection.selectionEnd()
    out: list[str] = []
    block = doc.findBlock(start)
    while block.isValid() and block.position() < end:
        if out:
            out.append("\n")
        it = block.begin()
        while not it.atEnd():
            frag = it.fragment()
            a, b = max(frag.position(), start), min(frag.position() + frag.length(), end)
            if frag.isValid() and a < b:
                source = frag.charFormat().property(SOURCE)
                text = frag.text()[a - frag.position() : b - frag.position()]
                out.append(source * len(text) if isinstance(source, str) else text)
            it += 1
        block = block.next()
    return "".join(out).replace("\u2028", "\n").replace("\u00a0", " ")


def text_colour() -> str:
    """The theme's text colour, for formulas."""
    from app.ui import theme

    return QColor(theme.current().text).name()
