""" "Run it on a server": the copyable commands that start a model too big for this machine.

Shows a `model_choice.ServePlan`: the machine it needs and, for vLLM, SGLang and llama.cpp's
llama-server, the command (read-only, monospaced, with a Copy button) and a note on whether
it fits. "Connect to a server…" hands over to the connect dialog.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)


class ServerCommandsDialog(QDialog):
    """One tab per serving engine; the best fit first."""

    sig_connect = Signal()

    def __init__(self, plan: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Run it on a server")
        self.resize(900, 480)
        layout = QVBoxLayout(self)
        intro = QLabel(plan.intro, self)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.tabs = QTabWidget(self)
        self.texts: list[QPlainTextEdit] = []
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        for cmd in plan.commands:
            page = QWidget(self.tabs)
            box = QVBoxLayout(page)
            note = QLabel(("" if cmd.fits else "Does not fit: ") + cmd.note, page)
            note.setWordWrap(True)
            note.setObjectName("Hint")
            box.addWidget(note)
            text = QPlainTextEdit(cmd.command, page)
            text.setReadOnly(True)
            text.setFont(mono)
            text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
            box.addWidget(text, 1)
            row = QHBoxLayout()
            copy = QPushButton("Copy command", page)
            copy.clicked.connect(lambda _=False, t=cmd.command: self.copy(t))
            row.addWidget(copy)
            row.addWidget(QLabel(f"Then connect to {cmd.base_url}", page))
            row.addStretch(1)
            box.addLayout(row)
            self.texts.append(text)
            self.tabs.addTab(page, cmd.title + ("" if cmd.fits else " — does not fit"))
        layout.addWidget(self.tabs, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.connect_button = buttons.addButton(
            "Connect to a server…", QDialogButtonBox.ButtonRole.ActionRole
        )
        self.connect_button.clicked.connect(self._connect)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def copy(self, text: str) -> None:
        QGuiApplication.clipboard().setText(text)

    def _connect(self) -> None:
        self.accept()
        self.sig_connect.emit()
