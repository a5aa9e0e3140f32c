"""Ponder's main window: conversations on the left, the chat in the middle, the model in the
status bar. Keyboard: Enter sends, Shift+Enter adds a line, Esc stops, Ctrl+N new chat.

The window only talks to core objects (the chat store, the engine client through the
EngineBridge); it never imports an engine library.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.core.chat_store import ChatStore
from app.core.generation_settings import ContextUse, preset_for_model, quant_from_name
from app.core.logs import versions
from app.ui.chat_controller import ChatController
from app.ui.chat_view import ChatView
from app.ui.composer import Composer
from app.ui.engine_worker import EngineBridge
from app.ui.sidebar import Sidebar
from app.ui.status_widgets import ContextMeter, ModelLabel

ENGINE_NAMES = {"llama_cpp": "llama.cpp", "mlx": "MLX", "openai": "remote server"}


class MainWindow(QMainWindow):
    def __init__(self, store: ChatStore, client: Any | None = None, n_ctx: int = 8192) -> None:
        super().__init__()
        self.setWindowTitle(f"Ponder {versions().get('ponder', '')}".strip())
        self.resize(1180, 780)
        if client is None:
            from app.core.engine import EngineClient  # light: the process starts on first load

            client = EngineClient()
        self.store = store
        self.store.purge_deleted()
        self.bridge = EngineBridge(client, self)
        self.sidebar = Sidebar(self)
        self.chat = ChatView(self)
        self.composer = Composer(self)
        self.controller = ChatController(store, self.bridge, self.chat, n_ctx=n_ctx)
        self._build_layout()
        self._build_status_bar()
        self._build_menus()
        self._connect()
        self.refresh_conversations()
        self.composer.set_budget(self.controller.settings().thinking_budget)
        self.composer.input.setFocus()

    # -- building ------------------------------------------------------------------------
    def _build_layout(self) -> None:
        pane = QWidget(self)
        pane.setObjectName("ChatPane")
        v = QVBoxLayout(pane)
        v.setContentsMargins(0, 0, 0, 12)
        v.setSpacing(8)
        v.addWidget(self.chat, 1)
        row = QHBoxLayout()
        row.setContentsMargins(24, 0, 24, 0)
        row.addStretch(1)
        self.composer.setMaximumWidth(860)
        row.addWidget(self.composer, 100)
        row.addStretch(1)
        v.addLayout(row)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(self.sidebar)
        split.addWidget(pane)
        split.setStretchFactor(1, 1)
        split.setSizes([260, 920])
        split.setHandleWidth(1)
        self.setCentralWidget(split)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        bar.setSizeGripEnabled(False)
        self.model_label = ModelLabel(self)
        self.meter = ContextMeter(self)
        self.speed_label = QLabel("", self)
        bar.addWidget(self.model_label, 1)
        bar.addPermanentWidget(self.meter)
        bar.addPermanentWidget(self.speed_label)

    def _build_menus(self) -> None:
        file = self.menuBar().addMenu("&File")
        self.new_action = self._action(
            file, "&New chat", self.controller.new_conversation, QKeySequence.StandardKey.New
        )
        self.load_action = self._action(
            file, "&Load model…", self.choose_model, QKeySequence.StandardKey.Open
        )
        self.reload_action = self._action(file, "&Reload engine", self.controller.reload_engine)
        file.addSeparator()
        self._action(file, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        chat = self.menuBar().addMenu("&Chat")
        self._action(chat, "&Rename…", self.rename_current, "F2")
        self._action(chat, "&Delete", self.delete_current)
        chat.addSeparator()
        self.stop_action = self._action(chat, "&Stop", self.controller.stop)
        self.answer_now_action = self._action(chat, "&Answer now", self.controller.answer_now)
        self._action(chat, "Re&generate", self.controller.regenerate, "Ctrl+R")
        chat.addSeparator()
        self._action(chat, "Generation &settings…", self.open_settings, "Ctrl+,")
        help_ = self.menuBar().addMenu("&Help")
        self._action(help_, "Open &logs folder", self.open_logs_folder)
        help_.addSeparator()
        self._action(help_, "&About Ponder", self.about)
        self.esc = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        self.esc.activated.connect(self.controller.stop)

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _connect(self) -> None:
        c, s = self.controller, self.sidebar
        self.composer.sig_send.connect(self.send)
        self.composer.sig_stop.connect(c.stop)
        self.composer.sig_answer_now.connect(c.answer_now)
        self.composer.sig_budget_changed.connect(c.set_thinking_budget)
        self.composer.sig_open_settings.connect(self.open_settings)
        s.sig_new_chat.connect(c.new_conversation)
        s.sig_selected.connect(c.open_conversation)
        s.sig_rename.connect(self.rename)
        s.sig_delete.connect(self.delete_conversation)
        s.sig_undo_delete.connect(self.undo_delete)
        s.sig_search.connect(lambda _t: self.refresh_conversations())
        self.chat.empty.sig_load_model.connect(self.choose_model)
        c.sig_request_model.connect(self.choose_model)
        c.sig_busy.connect(self._on_busy)
        c.sig_thinking.connect(self.composer.set_thinking)
        c.sig_model.connect(self._on_model)
        c.sig_loading.connect(self.model_label.set_loading)
        c.sig_context.connect(self.meter.set_use)
        c.sig_speed.connect(self._on_speed)
        c.sig_conversations.connect(self.refresh_conversations)
        c.sig_current.connect(self._on_current)

    # -- actions -------------------------------------------------------------------------
    def send(self, text: str) -> None:
        if self.controller.send(text):
            self.composer.clear()

    def choose_model(self) -> None:
        start = os.path.dirname(self.controller.model_path or "") or os.path.expanduser("~")
        path, _ = QFileDialog.getOpenFileName(
            self, "Load a GGUF model", start, "GGUF models (*.gguf);;All files (*)"
        )
        if path:
            self.controller.load_model(path)

    def open_settings(self) -> None:
        from app.ui.settings_dialog import SettingsDialog

        dialog = SettingsDialog(
            self.controller.settings(), preset_for_model(self.controller.model_name), self
        )
        if dialog.exec():
            self.controller.set_settings(dialog.settings())
            self.composer.set_budget(dialog.settings().thinking_budget)

    def refresh_conversations(self) -> None:
        convs = self.store.search(self.sidebar.search.text())
        self.sidebar.set_conversations(convs, self.controller.conversation_id)

    def rename(self, conversation_id: int, title: str) -> None:
        self.store.rename(conversation_id, title)
        self.refresh_conversations()

    def rename_current(self) -> None:
        self.sidebar.rename_current()

    def delete_conversation(self, conversation_id: int) -> None:
        conv = self.store.conversation(conversation_id)
        self.controller.delete_conversation(conversation_id)
        self.sidebar.show_undo(conversation_id, conv.title if conv else "chat")

    def delete_current(self) -> None:
        if self.controller.conversation_id is not None:
            self.delete_conversation(self.controller.conversation_id)

    def undo_delete(self, conversation_id: int) -> None:
        self.store.restore_conversation(conversation_id)
        self.controller.open_conversation(conversation_id)
        self.refresh_conversations()

    def open_logs_folder(self) -> None:
        """Show the log folder in the file manager (what to attach to a bug report)."""
        from app.core.logs import log_dir

        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def about(self) -> None:
        v = versions()
        engines = ", ".join(
            f"{name} {v[dist]}"
            for name, dist in (("llama.cpp (llama-cpp-python)", "llama-cpp-python"),
                               ("MLX", "mlx-lm"), ("Qt (PySide6)", "pyside6-essentials"))
            if dist in v
        )  # fmt: skip
        QMessageBox.about(
            self,
            "About Ponder",
            f"<b>Ponder {v.get('ponder', '')}</b><br>Runs reasoning models on this computer."
            f"<br><br>Engines: {engines}<br>Python {v['python']}",
        )

    # -- reactions -----------------------------------------------------------------------
    def _on_busy(self, busy: bool) -> None:
        self.composer.set_busy(busy)
        self.stop_action.setEnabled(busy)
        self.answer_now_action.setEnabled(busy)

    def _on_model(self, info: dict | None) -> None:
        if info is None:
            if self.controller.model_path:
                self.model_label.setText("Engine stopped — Reload engine to continue")
            else:
                self.model_label.set_none()
            self.chat.empty.set_model(None)
            return
        path = info.get("path") or self.controller.model_path or ""
        engine = ENGINE_NAMES.get(info.get("engine", ""), info.get("engine"))
        quant = info.get("quant") or quant_from_name(os.path.basename(path))
        self.model_label.set_model(self.controller.model_name or "model", quant, engine)
        self.composer.set_budget(self.controller.settings().thinking_budget)

    def _on_speed(self, tps: float | None) -> None:
        self.speed_label.setText(f"{tps:.1f} tokens/s" if tps else "")

    def _on_current(self, conversation_id: int | None) -> None:
        self.refresh_conversations()
        self.composer.set_budget(self.controller.settings().thinking_budget)
        if conversation_id is None:
            self.meter.set_use(ContextUse(self.controller.n_ctx))

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.controller.shutdown()
        self.bridge.shutdown()
        super().closeEvent(event)
