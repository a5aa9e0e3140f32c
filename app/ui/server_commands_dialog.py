""" "Run it on a server": the copyable commands that start a model too big for this machine.

Shows a `model_choice.ServePlan`: the machine it needs and, for vLLM, SGLang and llama.cpp's
llama-server, the command (read-only, monospaced, with a Copy button) and a note on whether
it fits. Every command carries the plan's random API key; "Listen on" rebinds them (127.0.0.1
by default, a warning for 0.0.0.0). "Save this server" keeps the entry with its key in the
keyring (the dialog says when there is none); "Connect to a server…" hands over.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
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

from app.core.server_commands import ANY_HOST, LOCAL_HOST, keyring_missing_words
from app.ui.safe_text import plain


class ServerCommandsDialog(QDialog):
    """One tab per serving engine; the best fit first."""

    sig_connect = Signal()

    def __init__(self, plan: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Run it on a server")
        self.resize(900, 480)
        self.plan = plan
        layout = QVBoxLayout(self)
        intro = plain(QLabel(plan.intro, self))
        intro.setWordWrap(True)
        layout.addWidget(intro)
        row = QHBoxLayout()
        row.addWidget(QLabel("Listen on:", self))
        self.host_box = QComboBox(self)
        self.host_box.setEditable(True)
        self.host_box.addItems([LOCAL_HOST, ANY_HOST])
        self.host_box.setCurrentText(plan.host)
        self.host_box.setToolTip("127.0.0.1: only the server itself (reach it through an SSH "
                                 "tunnel). 0.0.0.0: every network the server is on.")  # fmt: skip
        self.host_box.currentTextChanged.connect(self.set_host)
        row.addWidget(self.host_box)
        self.key_label = plain(QLabel(f"API key: {plan.api_key}", self))
        self.key_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row.addWidget(self.key_label, 1)
        layout.addLayout(row)
        self.warning = plain(QLabel(plan.warning, self))
        self.warning.setObjectName("Warning")
        self.warning.setVisible(bool(plan.warning))
        layout.addWidget(self.warning)
        self.keyring_note = plain(QLabel(keyring_missing_words(), self))
        self.keyring_note.setWordWrap(True)
        self.keyring_note.setObjectName("Warning")
        self.keyring_note.setVisible(bool(self.keyring_note.text()))
        layout.addWidget(self.keyring_note)
        notes = plain(QLabel(" ".join(plan.notes), self))
        notes.setWordWrap(True)
        notes.setObjectName("Hint")
        notes.setVisible(bool(plan.notes))
        layout.addWidget(notes)
        self.tabs = QTabWidget(self)
        self.texts: list[QPlainTextEdit] = []
        self.notes: list[QLabel] = []
        self.urls: list[QLabel] = []
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        for i, cmd in enumerate(plan.commands):
            page = QWidget(self.tabs)
            box = QVBoxLayout(page)
            note = plain(QLabel(("" if cmd.fits else "Does not fit: ") + cmd.note, page))
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
            copy.clicked.connect(lambda _=False, i=i: self.copy(self.plan.commands[i].command))
            row.addWidget(copy)
            url = plain(QLabel(f"Then connect to {cmd.base_url}", page))
            row.addWidget(url)
            row.addStretch(1)
            box.addLayout(row)
            self.texts.append(text)
            self.notes.append(note)
            self.urls.append(url)
            self.tabs.addTab(page, cmd.title + ("" if cmd.fits else " — does not fit"))
        layout.addWidget(self.tabs, 1)
        self.status = plain(QLabel("", self))
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.save_button = buttons.addButton(
            "Save this server in Ponder", QDialogButtonBox.ButtonRole.ActionRole
        )
        self.save_button.setToolTip("Adds the server to your models, its key in the keyring.")
        self.save_button.clicked.connect(self.save_server)
        self.connect_button = buttons.addButton(
            "Connect to a server…", QDialogButtonBox.ButtonRole.ActionRole
        )
        self.connect_button.clicked.connect(self._connect)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._update_save()

    def set_host(self, host: str) -> None:
        """Show the same commands (same key) listening on `host`."""
        try:
            plan = self.plan.rebind(host)
        except ValueError as exc:
            self.status.setText(str(exc))
            return
        self.plan = plan
        self.status.setText("")
        self.warning.setText(plan.warning)
        self.warning.setVisible(bool(plan.warning))
        for i, cmd in enumerate(plan.commands):
            self.texts[i].setPlainText(cmd.command)
            self.notes[i].setText(("" if cmd.fits else "Does not fit: ") + cmd.note)
            self.urls[i].setText(f"Then connect to {cmd.base_url}")
        self._update_save()

    def _update_save(self) -> None:
        anywhere = "SERVER" in self.plan.commands[0].base_url if self.plan.commands else True
        self.save_button.setEnabled(not anywhere)
        if anywhere and self.plan.commands:
            self.save_button.setToolTip("On 0.0.0.0 the address is the server's name: add it "
                                        "with Connect to a server and this key.")  # fmt: skip

    def save_server(self) -> str:
        """Save the current tab's server (address, model name) with its key in the keyring."""
        from app.core.remote import RemoteModel, save_remote

        cmd = self.plan.commands[max(0, self.tabs.currentIndex())]
        entry = RemoteModel(base_url=cmd.base_url, model=self.plan.served_name,
                            label=f"{self.plan.served_name} ({cmd.engine})")  # fmt: skip
        try:
            warning = save_remote(entry, self.plan.api_key)
        except OSError as exc:
            warning = f"The server could not be saved: {exc.strerror or exc}."
        self.status.setText(warning or f"Saved: {cmd.base_url}, key kept in the keyring.")
        return self.status.text()

    def copy(self, text: str) -> None:
        QGuiApplication.clipboard().setText(text)

    def _connect(self) -> None:
        self.accept()
        self.sig_connect.emit()
