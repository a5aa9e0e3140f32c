"""LaTeX math in answers and in the thinking is typeset in the Qt text document (issue 18).

Coverage is measured on tests/data/math_formulas.txt (formulas typical of R1 answers); a
finished answer holds our images for its inline and display math, a broken formula stays
its source, copying gives the LaTeX back, and nothing the model wrote names a resource
that is loaded.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtGui import QFont, QGuiApplication, QTextCursor, QTextDocument
from PySide6.QtWidgets import QApplication

from app.ui import math_render
from app.ui.assistant_message import AssistantMessageWidget
from app.ui.math_render import SCHEME, SOURCE, Typesetter, find_math, render, source_of
from app.ui.message_widgets import AnswerView
from app.ui.safe_text import SafeDocument

FORMULAS = Path(__file__).parent / "data" / "math_formulas.txt"


def formulas() -> list[str]:
    """The formula set: one LaTeX formula a line, # comments."""
    lines = FORMULAS.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def images(doc: QTextDocument) -> list[tuple[str, str]]:
    """(name, LaTeX source) of every image in `doc`."""
    found = []
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fmt = it.fragment().charFormat()
            if fmt.isImageFormat():
                found.append((fmt.toImageFormat().name(), str(fmt.property(SOURCE))))
            it += 1
        block = block.next()
    return found


def settle(doc: QTextDocument) -> None:
    """Typeset now what would otherwise follow on a timer."""
    for setter in doc.findChildren(Typesetter):
        setter.finish()


def test_coverage_on_the_formula_set(qapp):
    tex = formulas()
    assert len(tex) >= 60
    font = QFont()
    font.setPixelSize(14)
    failed = [f for f in tex if render(f, False, font, "#1f2328") is None]
    coverage = 1 - len(failed) / len(tex)
    assert coverage >= 0.95, failed


def test_the_speedups_draw_the_same(qapp, monkeypatch):
    import ziamath.styles
    from ziamath.nodes.mnode import Mnode
    from ziamath.nodes.mrow import Mrow

    def drawings() -> list[str]:
        out = []
        for f in formulas():
            try:
                out.append(math_render._svg(f, False, 14, "#000000")[0])
            except Exception as e:  # noqa: BLE001 - a formula left as source fails alike
                out.append(type(e).__name__)
        return out

    math_render.ready(wait=True)
    ours = drawings()
    original = math_render.ORIGINALS
    assert ziamath.styles.asdict is not original["asdict"]  # the speedups are in place
    monkeypatch.setattr(ziamath.styles, "asdict", original["asdict"])
    monkeypatch.setattr(ziamath.styles, "ChainMap", original["ChainMap"])
    monkeypatch.setattr(Mnode, "size_px", original["size_px"])
    monkeypatch.setattr(Mrow, "_get_height_nostretch", original["nostretch"])
    assert ours == drawings()


def test_finding_math_in_markdown():
    text = r"So $x^2$ and $$\sum_k k$$, \(a\), \[b\], `$code$`, $5 and $10, \boxed{\frac12}."
    found = [(f.tex, f.display) for _, _, f in find_math(text)]
    assert found == [
        ("x^2", False),
        (r"\sum_k k", True),
        ("a", False),
        ("b", True),
        (r"\boxed{\frac12}", False),
    ]
    assert find_math(r"The answer is \boxed{42}.") == []  # plain: highlighted as text


ANSWER = r"""The sum is $\sum_{k=1}^n k = \frac{n(n+1)}{2}$, so:

$$\sum_{k=1}^{10} k = 55$$

and a broken one: $\frac{a}{$ stays.
"""


def test_a_finished_answer_holds_our_images_and_a_broken_formula_stays_source(qapp):
    view = AnswerView()
    view.set_markdown(ANSWER)
    settle(view.document())
    found = images(view.document())
    assert [source for _, source in found] == [
        r"$\sum_{k=1}^n k = \frac{n(n+1)}{2}$",
        r"$$\sum_{k=1}^{10} k = 55$$",
    ]
    doc = view.document()
    for name, _ in found:
        assert name.startswith(f"{SCHEME}:")
        image = doc.resource(QTextDocument.ResourceType.ImageResource, QUrl(name))
        assert not image.isNull() and image.width() > 10
    text = doc.toPlainText()
    assert r"$\frac{a}{$" in text and "\\sum" not in text


def test_copy_answer_and_a_selection_give_the_latex(qapp):
    msg = AssistantMessageWidget(1, 0)
    msg.begin(thinking_open=False)
    msg.add_answer(ANSWER, 40)
    msg.finish("stop", False, {})
    settle(msg.answer.document())
    msg.copy_answer()
    assert QGuiApplication.clipboard().text() == ANSWER
    msg.answer.selectAll()
    copied = msg.answer.createMimeDataFromSelection().text()
    assert r"$\sum_{k=1}^n k = \frac{n(n+1)}{2}$" in copied and "\ufffc" not in copied
    cursor = QTextCursor(msg.answer.document())
    cursor.select(QTextCursor.SelectionType.Document)
    assert r"$$\sum_{k=1}^{10} k = 55$$" in source_of(cursor)


def test_the_thinking_panel_typesets_math_when_finished(qapp):
    msg = AssistantMessageWidget(1, 0)
    msg.begin()
    msg.add_thinking("We need $x^2 = 4$, so\n\\[\nx = \\pm 2\n\\]\nthen check.", 20)
    assert msg.thinking.view() is msg.thinking.body  # nothing typeset while it streams
    msg.add_answer("$x = 2$", 3)
    panel = msg.thinking
    assert panel.math_view is not None and panel.view() is panel.math_view
    settle(panel.math_view.document())
    assert [s for _, s in images(panel.math_view.document())] == [
        "$x^2 = 4$",
        "\\[\nx = \\pm 2\n\\]",
    ]
    panel.toggle()
    assert panel.is_open and panel.math_view.isVisibleTo(panel) and panel.body.isHidden()
    msg.copy_thinking()
    assert QApplication.clipboard().text().startswith("We need $x^2 = 4$")


def test_saved_thinking_without_math_stays_plain(qapp):
    msg = AssistantMessageWidget(1, 0)
    msg.show_saved("It is 4.", "Two plus two, costs $5 and $10.", "", "complete", {})
    assert msg.thinking.view() is msg.thinking.body


@pytest.mark.parametrize(
    "answer",
    [
        "$<img src=/dev/zero>$ and ![x](/dev/zero)",
        "$$<img src=/dev/zero>$$",
        f"![a]({SCHEME}:0123) and <img src='{SCHEME}:0123'> and $x$",
    ],
)
def test_no_resource_named_by_the_model_is_loaded(qapp, monkeypatch, answer):
    asked: list[str] = []
    original = SafeDocument.loadResource

    def spy(self, kind, name):
        asked.append(name.toString() if isinstance(name, QUrl) else str(name))
        return original(self, kind, name)

    monkeypatch.setattr(SafeDocument, "loadResource", spy)
    view = AnswerView()
    view.set_markdown(answer)
    settle(view.document())
    view.resize(500, 200)
    view.grab()  # paints: every image is looked up
    ours = {name for name, _ in images(view.document())}
    assert all(name.startswith(f"{SCHEME}:") for name in ours)
    # ours are served from what we added; what the model named got SafeDocument's blank pixel
    assert not set(asked) & ours
    assert set(asked) <= {"/dev/zero", f"{SCHEME}:0123"}
    text = view.document().toPlainText()
    if "/dev/zero" in answer:
        assert "<img src=/dev/zero>" in text  # the HTML in the formula stays text
    if "$x$" in answer:
        assert len(ours) == 1 and f"{SCHEME}:0123" in text  # the model's names are words


def test_rendering_is_cached_by_formula_size_and_colour(qapp):
    font = QFont()
    font.setPixelSize(15)
    first = render(r"\frac{1}{7}", False, font, "#000000")
    assert render(r"\frac{1}{7}", False, font, "#000000") is first
    assert render(r"\frac{1}{7}", False, font, "#ffffff") is not first
    assert math_render.ready()
