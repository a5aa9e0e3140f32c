"""Model → Serve on this computer…: the window's models for other programs (app/serve).

`ServeController` (one per window) starts and stops the OpenAI-compatible server on the
window's own engine client, off the GUI thread, and relays what happens as signals: the
server's status (address, model loaded, requests served) and who holds the shared engine,
shown in the status bar while another program's request is answered. `ServeDialog` is the
toggle with address, port and key, and the status line. The server library is imported only
when serving starts. Names and addresses are shown as plain text.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.engine_share import SERVER, WINDOW

log = logging.getLogger(__name__)

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8484  # as app.serve (not imported at start-up)
LOCAL = ("127.0.0.1", "localhost", "::1")
BUSY_TEXT = "Answering a request from another program (Serve on this computer)"


def plain_label(text: str = "", parent: QWidget | None = None) -> QLabel:
    label = QLabel(text, parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    return label


class ServeController(QObject):
    """Runs the server for one window; lives as long as the window."""

    sig_state = Signal(bool, str)  # serving, what to say (the address, or why not)
    sig_status = Signal(object)  # app.serve.runner.ServeStatus
    sig_holder = Signal(object)  # who holds the engine: "window", "server" or None

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.server: Any = None
        self.base_url = ""
        self.status: Any = None
        self.busy_label = plain_label("", None)
        self.busy_label.setWordWrap(False)
        self.busy_label.hide()
        window.statusBar().addPermanentWidget(self.busy_label)
        self._relay = self.sig_holder.emit  # what the engine share calls (from any thread)
        self.sig_holder.connect(self._show_holder)
        self.sig_status.connect(self._keep_status)
        window.installEventFilter(self)

    @property
    def serving(self) -> bool:
        return self.server is not None

    def start(self, host: str, port: int, api_key: str | None) -> None:
        """Start serving on a helper thread; `sig_state` says how it went."""
        threading.Thread(target=self._start, args=(host, port, api_key or None),
                         name="serve-start", daemon=True).start()  # fmt: skip

    def _start(self, host: str, port: int, api_key: str | None) -> None:
        try:
            from app.serve.catalog import ModelCatalog
            from app.serve.http import LocalServer, ServeConfig
            from app.serve.runner import ServeRunner

            share = self.window.bridge.worker.share
            runner = ServeRunner(self.window.bridge.client, ModelCatalog(), share,
                                 on_status=self.sig_status.emit)  # fmt: skip
            server = LocalServer(runner, ServeConfig(host, port, api_key))
            server.start()
        except Exception as exc:  # said in the dialog, in words
            log.warning("serving did not start: %s", exc)
            self.sig_state.emit(False, f"Not serving: {exc}")
            return
        share.subscribe(self._relay)
        self.server, self.base_url = server, server.base_url
        self.sig_state.emit(True, self.base_url)

    def stop(self, wait: bool = False) -> None:
        """Stop serving (an answer in progress is cancelled)."""
        server, self.server = self.server, None
        if server is None:
            return
        server.runner.share.unsubscribe(self._relay)
        self.sig_holder.emit(None)
        if wait:
            server.stop(timeout_s=3.0)
        else:
            threading.Thread(target=server.stop, name="serve-stop", daemon=True).start()
        self.sig_state.emit(False, "Not serving.")

    def _keep_status(self, status: Any) -> None:
        self.status = status

    def _show_holder(self, holder: Any) -> None:
        self.busy_label.setText(BUSY_TEXT if holder == SERVER else "")
        self.busy_label.setVisible(holder == SERVER)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        if obj is self.window and event.type() == QEvent.Type.Close:
            self.stop(wait=True)  # before the window closes the engine
        return False


def status_words(serving: bool, base_url: str, status: Any, holder: Any = None) -> str:
    """The status line: address, the model loaded, requests served (or why not serving)."""
    if not serving:
        return base_url or "Not serving."
    model = getattr(status, "model", None) or "none yet (loaded on the first request)"
    served = int(getattr(status, "requests_served", 0) or 0)
    text = f"Serving at {base_url} · model loaded: {model} · {served:,} request"
    text += "" if served == 1 else "s"
    text += " served"
    if holder == WINDOW:
        text += " · waiting: the window is answering"
    elif getattr(status, "answering", False):
        text += " · answering"
    return text


class ServeDialog(QDialog):
    """The toggle, address, port and key, and the status line."""

    def __init__(self, controller: ServeController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle("Serve on this computer")
        self.setMinimumWidth(560)
        self._holder: Any = None
        intro = plain_label("Other programs (Open WebUI, editor plugins, scripts using the "
                            "openai package) can use the models installed here, with their "
                            "reasoning, through an OpenAI-compatible server.")  # fmt: skip
        self.toggle = QCheckBox("Serve the installed models", self)
        self.host = QLineEdit(DEFAULT_HOST, self)
        self.port = QSpinBox(self)
        self.port.setRange(1, 65535)
        self.port.setValue(DEFAULT_PORT)
        self.key = QLineEdit(self)
        self.key.setPlaceholderText("none: only this computer can connect")
        self.new_key = QPushButton("New key", self)
        key_row = QHBoxLayout()
        key_row.addWidget(self.key, 1)
        key_row.addWidget(self.new_key)
        form = QFormLayout()
        form.addRow("Address", self.host)
        form.addRow("Port", self.port)
        form.addRow("API key", key_row)
        self.hint = plain_label("", self)
        self.status = plain_label("", self)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.toggle)
        layout.addLayout(form)
        layout.addWidget(self.hint)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        self.toggle.toggled.connect(self._toggled)
        self.new_key.clicked.connect(self._generate_key)
        self.host.textChanged.connect(self._show_hint)
        controller.sig_state.connect(self._on_state)
        controller.sig_status.connect(self._on_status)
        controller.sig_holder.connect(self._on_holder)
        self._sync()

    def _generate_key(self) -> None:
        import secrets

        self.key.setText("sk-ponder-" + secrets.token_urlsafe(24))

    def _show_hint(self) -> None:
        local = self.host.text().strip() in LOCAL
        self.hint.setText(
            "Only programs on this computer can connect (with no key set, any key they send "
            "is accepted). Clients use the base URL shown below." if local else
            "Other computers on your network can connect: they need the API key."
        )  # fmt: skip

    def _toggled(self, on: bool) -> None:
        if on == self.controller.serving:
            return
        if not on:
            self.controller.stop()
            return
        host = self.host.text().strip() or DEFAULT_HOST
        if host not in LOCAL and not self.key.text().strip():
            self._generate_key()  # another address: a key is required
        self._set_editable(False)
        self.status.setText("Starting…")
        self.controller.start(host, self.port.value(), self.key.text().strip())

    def _on_state(self, serving: bool, words: str) -> None:
        self.toggle.blockSignals(True)
        self.toggle.setChecked(serving)
        self.toggle.blockSignals(False)
        self._set_editable(not serving)
        self.status.setText(status_words(serving, words, self.controller.status, self._holder))

    def _on_status(self, _status: Any) -> None:
        self._refresh()

    def _on_holder(self, holder: Any) -> None:
        self._holder = holder
        self._refresh()

    def _refresh(self) -> None:
        c = self.controller
        if c.serving:
            self.status.setText(status_words(True, c.base_url, c.status, self._holder))

    def _set_editable(self, editable: bool) -> None:
        for widget in (self.host, self.port, self.key, self.new_key):
            widget.setEnabled(editable)

    def _sync(self) -> None:
        c = self.controller
        self.toggle.blockSignals(True)
        self.toggle.setChecked(c.serving)
        self.toggle.blockSignals(False)
        if c.serving:
            cfg = c.server.config
            self.host.setText(cfg.host)
            self.port.setValue(int(c.server.port))
            self.key.setText(cfg.api_key or "")
        self._set_editable(not c.serving)
        self._show_hint()
        self.status.setText(status_words(c.serving, c.base_url, c.status))


def open_serve_dialog(window: Any) -> ServeDialog:
    """Show the dialog for `window` (its controller is made on first use and kept)."""
    controller = getattr(window, "serve_controller", None)
    if controller is None:
        controller = ServeController(window)
        window.serve_controller = controller
    dialog = ServeDialog(controller, window)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
    return dialog
