"""Chat UX details from issue #18, offscreen: disabled primary buttons look disabled, the
window's small promises (Ctrl+N focuses the composer, F2 renames in a full-size editor,
search looks into the thinking), and stale status-bar state after a model switch."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication, QPushButton, QWidget

from app.ui import theme
from app.ui.theme import apply_theme


@pytest.mark.parametrize("dark", [False, True])
def test_a_disabled_primary_button_looks_different_from_an_enabled_one(qtbot, dark):
    t = apply_theme(QApplication.instance(), dark=dark)
    sheet = QApplication.instance().styleSheet()
    assert "QPushButton#Primary:disabled" in sheet  # the id rule no longer hides :disabled
    box = QWidget()
    qtbot.addWidget(box)
    on, off = QPushButton("Load", box), QPushButton("Load", box)
    for b, x in ((on, 0), (off, 120)):
        b.setObjectName("Primary")
        b.setGeometry(x, 0, 100, 30)
    off.setEnabled(False)
    box.resize(240, 40)
    box.show()
    qtbot.waitExposed(box)
    image = box.grab().toImage()
    enabled_bg = image.pixelColor(10, 15)
    disabled_bg = image.pixelColor(130, 15)
    assert enabled_bg.name() == QColor(t.accent).name()
    assert disabled_bg.name() == QColor(t.border).name()
    assert enabled_bg != disabled_bg
    apply_theme(QApplication.instance(), dark=False)
    assert theme.current().accent
