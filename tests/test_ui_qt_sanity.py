"""The Qt binding itself must be sound: PySide6 6.12.0 on Python 3.11 drops a reference to
None on every call of a void C++ method (and to True on every signal emit), which crashes
the app within minutes ("none_dealloc: deallocating None"). 6.11.x is fine; so is any
version on Python 3.12+, where None and True are immortal."""

from __future__ import annotations

import sys

import PySide6
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel

FIX = "pin pyside6-essentials<6.12 (6.11.3 is sound) or run on Python 3.12+"


class _Emitter(QObject):
    sig_probe = Signal(int)


def test_void_calls_keep_references_to_none(qtbot):
    label = QLabel()
    qtbot.addWidget(label)
    before = sys.getrefcount(None)
    for i in range(200):
        label.setText(str(i))
    lost = before - sys.getrefcount(None)
    assert lost < 100, f"PySide6 {PySide6.__version__} leaks None references: {FIX}"


def test_signal_emit_keeps_references_to_true():
    emitter = _Emitter()
    before = sys.getrefcount(True)
    for i in range(200):
        emitter.sig_probe.emit(i)
    lost = before - sys.getrefcount(True)
    assert lost < 100, f"PySide6 {PySide6.__version__} leaks True references: {FIX}"
