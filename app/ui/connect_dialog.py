"""The "Connect to a server" dialog: address, API key, test connection, pick a model, save.

The network calls (`app.core.remote.check_connection`) run on a `ConnectionCheck` QThread and
come back through its signal; the dialog only shows the result in words. The key field is
masked; the key is handed to `app.core.remote.save_remote`, which keeps it in the keyring.
"""

from __future__ import annotations

from PySide6.QtCore import QThread, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.core import remote
from app.ui.safe_text import plain, tip


class ConnectionCheck(QThread):
    """Runs one connection test off the GUI thread; the report arrives via `sig_report`."""

    sig_report = Signal(object)  # remote.ConnectionReport

    def __init__(self, base_url: str, api_key: str, api: str, verify_tls: bool, parent=None):
        super().__init__(parent)
        self.args = (base_url, api_key, api, verify_tls)

    def run(self) -> None:
        try:
            report = remote.check_connection(*self.args)
        except Exception as exc:  # noqa: BLE001 - reported in the dialog, never swallowed
            report = remote.ConnectionReport(False, f"The test failed: {exc}")
        self.sig_report.emit(report)


class ConnectDialog(QDialog):
    """Fill in a server, test it, choose a model; `entry` and `api_key` hold the result."""

    sig_saved = Signal(object)  # remote.RemoteModel

    def __init__(self, parent=None, entry: remote.RemoteModel | None = None,
                 api_key: str | None = None, list_path=None) -> None:  # fmt: skip
        super().__init__(parent)
        self.setWindowTitle("Connect to a server")
        self.setMinimumWidth(520)
        self.list_path = list_path
        self.entry: remote.RemoteModel | None = None
        self.api_key: str | None = None
        self.warning: str | None = None
        self._check: ConnectionCheck | None = None

        layout = QVBoxLayout(self)
        intro = QLabel(
            "Chat with a model that runs on another machine: a vLLM, SGLang, llama.cpp "
            "(llama-server) or Ollama server.",
            self,
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        layout.addLayout(form)

        self.url = QLineEdit(self)
        self.url.setPlaceholderText("http://gpu-server:8000/v1")
        form.addRow("Server address", self.url)
        self.key = QLineEdit(self)
        self.key.setEchoMode(QLineEdit.EchoMode.Password)
        self.key.setPlaceholderText("Only if the server asks for one")
        form.addRow("API key", self.key)
        self.api = QComboBox(self)
        for value, label in remote.API_LABELS.items():
            self.api.addItem(label, value)
        form.addRow("Speaks", self.api)
        self.reasoning = QComboBox(self)
        for value, label in remote.REASONING_FORMATS.items():
            self.reasoning.addItem(label, value)
        self.reasoning.setToolTip(
            "How the server sends the model's thinking. Auto works for most servers; choose "
            "<think> tags when a server without a reasoning parser shows the thinking as the "
            "answer."
        )
        form.addRow("Reasoning format", self.reasoning)
        self.verify = QCheckBox("Check the server's certificate (https)", self)
        self.verify.setChecked(True)
        self.verify.setToolTip("Turn off only for a server you trust on your own network.")
        form.addRow("", self.verify)

        test_row = QWidget(self)
        h = QHBoxLayout(test_row)
        h.setContentsMargins(0, 0, 0, 0)
        self.test_button = QPushButton("Test connection", test_row)
        self.test_button.clicked.connect(self.test_connection)
        h.addWidget(self.test_button)
        h.addStretch(1)
        form.addRow("", test_row)
        self.result_label = plain(QLabel("Not tested yet.", self))  # the server's words
        self.result_label.setObjectName("Hint")
        self.result_label.setWordWrap(True)
        self.result_label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)
        self.result_label.setContentsMargins(0, 0, 0, 4)
        form.addRow(self.result_label)

        self.model = QComboBox(self)
        self.model.setEditable(True)
        if (line_edit := self.model.lineEdit()) is not None:  # always: the box is editable
            line_edit.setPlaceholderText("Test the connection to list the models")
        self.model.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.model.setMinimumContentsLength(24)
        self.model.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        form.addRow("Model", self.model)
        self.label = QLineEdit(self)
        self.label.setPlaceholderText("Optional: a name for the model list")
        form.addRow("Name", self.label)

        self._build_keyring_box(layout)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.url.textChanged.connect(self._update_buttons)
        self.model.currentTextChanged.connect(self._update_buttons)
        if entry is not None:
            self._fill(entry, api_key)
        self._update_buttons()

    def _build_keyring_box(self, layout: QVBoxLayout) -> None:
        """Shown when the key could not be saved (no keyring): say so, and offer to keep it
        in memory for this session (never in a file)."""
        self.keyring_box = QWidget(self)
        self.keyring_box.setObjectName("ErrorBox")
        v = QVBoxLayout(self.keyring_box)
        v.setContentsMargins(10, 8, 10, 8)
        self.keyring_label = plain(QLabel("", self.keyring_box))
        self.keyring_label.setWordWrap(True)
        v.addWidget(self.keyring_label)
        row = QHBoxLayout()
        self.session_button = QPushButton("Keep the key for this session", self.keyring_box)
        self.session_button.setObjectName("Primary")
        self.no_key_button = QPushButton("Use it only now", self.keyring_box)
        row.addWidget(self.session_button)
        row.addWidget(self.no_key_button)
        row.addStretch(1)
        v.addLayout(row)
        self.session_button.clicked.connect(self.keep_key_for_session)
        self.no_key_button.clicked.connect(self.continue_without_key)
        self.keyring_box.hide()
        layout.addWidget(self.keyring_box)

    def _fill(self, entry: remote.RemoteModel, api_key: str | None) -> None:
        self.url.setText(entry.base_url)
        self.key.setText(api_key or "")
        self.api.setCurrentIndex(max(0, self.api.findData(entry.api)))
        self.verify.setChecked(entry.verify_tls)
        self.reasoning.setCurrentIndex(max(0, self.reasoning.findData(entry.reasoning_format)))
        self.model.setEditText(entry.model)
        self.label.setText(entry.label)

    def _update_buttons(self) -> None:
        ready = bool(self.url.text().strip())
        self.test_button.setEnabled(ready and self._check is None)
        self.save_button.setEnabled(ready and bool(self.model.currentText().strip()))

    def test_connection(self) -> None:
        """Start the test on a worker thread; `sig_report` brings the words back."""
        if self._check is not None or not self.url.text().strip():
            return
        self.result_label.setText("Connecting…")
        check = ConnectionCheck(self.url.text(), self.key.text().strip(),
                                self.api.currentData(), self.verify.isChecked(), self)  # fmt: skip
        check.sig_report.connect(self._on_report)
        check.finished.connect(self._on_check_finished)
        self._check = check
        self._update_buttons()
        check.start()

    def _on_report(self, report: remote.ConnectionReport) -> None:
        prefix = "✔ " if report.ok else "✘ "
        self.result_label.setText(prefix + report.message)
        self.result_label.setToolTip(tip(report.detail))
        if report.models:
            current = self.model.currentText().strip()
            self.model.clear()
            self.model.addItems(list(report.models))
            self.model.setCurrentIndex(max(0, self.model.findText(current)))
        self.adjustSize()

    def _on_check_finished(self) -> None:
        check, self._check = self._check, None
        if check is not None:
            check.deleteLater()
        self._update_buttons()

    def save(self) -> None:
        entry = remote.RemoteModel(
            base_url=self.url.text().strip(),
            model=self.model.currentText().strip(),
            label=self.label.text().strip(),
            api=self.api.currentData(),
            verify_tls=self.verify.isChecked(),
            reasoning_format=self.reasoning.currentData(),
        )
        if problem := remote.address_problem(entry.base_url):  # e.g. a user:password in it
            self.result_label.setText("✘ " + problem)
            return
        self.api_key = self.key.text().strip() or None
        self.warning = remote.save_remote(entry, self.api_key, self.list_path)
        self.entry = entry
        if self.warning and self.api_key:  # no keyring: say so before closing
            self.keyring_label.setText(
                "The server is saved, but its API key is not: this system has no password "
                "store (keyring), and Ponder never writes keys to a file. After a restart the "
                "server will refuse Ponder (401) until you enter the key again. Keep the key "
                "in memory until Ponder quits?"
            )
            self.keyring_box.show()
            self.save_button.setEnabled(False)
            self.adjustSize()
            return
        self._finish()

    def keep_key_for_session(self) -> None:
        """No keyring: keep the key in memory until Ponder quits, and go on."""
        if self.entry is not None and self.api_key:
            remote.keep_key_for_session(self.entry, self.api_key)
        self._finish()

    def continue_without_key(self) -> None:
        """Use the key for this connection only; it is not kept."""
        self._finish()

    def _finish(self) -> None:
        if self.entry is not None:
            self.sig_saved.emit(self.entry)
        self.accept()

    def done(self, result: int) -> None:
        if self._check is not None:
            self._check.wait(15_000)  # the test has its own timeout; never leave it running
        super().done(result)
