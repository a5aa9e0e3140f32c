"""The thinking panel shows a long streamed paragraph in pieces (issue #18), offscreen.

Qt lays a paragraph out again on every append, so a paragraph longer than PROSE_BLOCK is
shown in pieces cut at sentence ends. The cut is display only: a piece starts at its
sentence (no leading space), and Copy thinking, a copied selection and the finished view
with typeset math all give the text exactly as the model wrote it.
"""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication, QTextCursor

from app.ui.safe_text import ZWSP
from app.ui.thinking_panel import PROSE_BLOCK, ThinkingPanel


def _paragraph(n: int, math: bool = False) -> str:
    """One long paragraph of `n` sentences (no newline), as a model streams it."""
    formula = " so $x^2 + y^2 = z^2$ holds" if math else ""
    return "".join(
        f"{'' if i == 0 else ' '}Step {i} checks the sum again{formula} and finds it right."
        for i in range(n)
    )


def _tokens(text: str) -> list[str]:
    """Word tokens with their leading space, as llama.cpp's SPM vocabularies give them."""
    words = text.split(" ")
    return [words[0], *(" " + w for w in words[1:])]


def _stream(qtbot, text: str) -> ThinkingPanel:
    panel = ThinkingPanel()
    qtbot.addWidget(panel)
    panel.resize(700, 400)
    panel.show()
    panel.start()
    for token in _tokens(text):
        panel.append(token, 1)
    return panel


def _blocks(panel: ThinkingPanel) -> list[str]:
    out, block = [], panel.body.document().begin()
    while block.isValid():
        out.append(block.text())
        block = block.next()
    return out


def _copied(view) -> str:
    view.selectAll()
    return view.createMimeDataFromSelection().text()


def test_a_long_paragraph_is_shown_in_pieces_that_start_without_a_space(qtbot):
    text = _paragraph(160)  # about 7,500 characters, one paragraph
    panel = _stream(qtbot, text)
    pieces = _blocks(panel)
    assert len(pieces) >= 4 and all(len(p) <= PROSE_BLOCK + 80 for p in pieces)
    assert all(p.startswith("Step ") for p in pieces), [p[:12] for p in pieces]
    assert " ".join(pieces) == text  # each cut was one space, and only that was taken out
    # copying gives the text as written: Copy thinking, and a selection of all of it
    assert panel.text() == text
    assert _copied(panel.body) == text
    panel.body.copy()
    assert QGuiApplication.clipboard().text() == text


def test_a_selection_across_a_cut_gives_the_space_back(qtbot):
    text = _paragraph(80)
    panel = _stream(qtbot, text)
    first, second = _blocks(panel)[:2]
    cursor = QTextCursor(panel.body.document())
    cursor.setPosition(len(first) - 20)
    cursor.setPosition(len(first) + 1 + 15, QTextCursor.MoveMode.KeepAnchor)
    panel.body.setTextCursor(cursor)
    copied = panel.body.createMimeDataFromSelection().text()
    assert copied == first[-20:] + " " + second[:15] and copied in text


def test_the_finished_thinking_with_math_is_whole_again_and_copies_exactly(qtbot):
    text = _paragraph(60, math=True)  # about 5,000 characters with a formula per sentence
    panel = _stream(qtbot, text)
    assert len(_blocks(panel)) >= 3
    panel.end_thinking()
    view = panel.view()
    assert view is panel.math_view  # the formulas are typeset in the finished view
    assert view.document().blockCount() == 1  # one paragraph again, laid out once
    assert _copied(view) == text


def test_a_long_line_without_spaces_cut_for_display_copies_whole(qtbot):
    run = "x" * 9_000  # break_long_line cuts it into paragraphs of 4,000 characters
    panel = _stream(qtbot, "Look:")
    for _ in range(len(run) // 50):
        panel.append("x" * 50, 1)
    panel.append(" end.", 1)
    assert len(_blocks(panel)) >= 3
    assert panel.text() == "Look:" + run + " end."
    copied = _copied(panel.body)
    assert ZWSP not in copied and copied == "Look:" + run + " end."
