"""Ponder's main window: conversations on the left, the chat in the middle, the model in the
status bar. Keyboard: Enter sends, Shift+Enter adds a line, Esc stops, Ctrl+N new chat.

The window only talks to core objects (the chat store, the engine client through the
EngineBridge); it never imports an engine library. The Model menu opens the model wizard,
the model manager and GGUF import; a .gguf dropped on the window is imported. After each
complete answer the measured speed and memory are stored (app.core.model_stats) and shown
next to the planner's prediction.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
    QShortcut,
)
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
from app.core.model_stats import ModelStats
from app.core.session_state import SessionState
from app.ui.chat_controller import ChatController
from app.ui.chat_view import ChatView
from app.ui.composer import Composer
from app.ui.engine_worker import EngineBridge
from app.ui.sidebar import Sidebar
from app.ui.status_widgets import ContextMeter, ModelLabel

ENGINE_NAMES = {"llama_cpp": "llama.cpp", "mlx": "MLX", "openai": "remote server"}


class MainWindow(QMainWindow):
    def __init__(self, store: ChatStore, client: Any | None = None, n_ctx: int = 16384) -> None:
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
        # measured speed per model, next to the chats (a test's temporary database keeps
        # its measurements to itself)
        self.stats = ModelStats(store.path.parent / "model_stats.json")
        # the last chat, model and thread count, so a restart comes back (session_restore)
        self.session_state = SessionState(store.path.parent)
        self.controller.threads = self.session_state.threads()
        self._remote_entry: Any = None  # the saved server entry last loaded
        # What the wizard and import plan against (model_choice.ChoiceEnv; tests and
        # screenshots set their own). Made on first use: the planner stays off start-up.
        self.choice_env: Any = None
        self.discovery: Any = None  # a callable listing models for the manager (None: scan)
        self.wizard: Any = None
        self.connect_dialog: Any = None
        self.manager: Any = None
        self._load_meta: dict[str, Any] = {}
        self._wizard_waiting = False
        self._tasks: list[Any] = []
        self.setAcceptDrops(True)
        self._build_layout()
        self._build_status_bar()
        self._build_menus()
        self._connect()
        self.refresh_conversations()
        self.composer.set_budget(self.controller.settings().thinking_budget)
        self.composer.input.setFocus()
        if client is None:  # the app itself (tests and benchmarks bring their own client)
            QTimer.singleShot(0, self.refresh_auto)

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
            file, "&New chat", self.new_chat, QKeySequence.StandardKey.New
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
        model = self.menuBar().addMenu("&Model")
        self.wizard_action = self._action(model, "Model &wizard…", self.open_wizard)
        self.manager_action = self._action(model, "&Models…", self.open_model_manager, "Ctrl+M")
        self.import_action = self._action(model, "&Import GGUF…", self.import_gguf)
        self.connect_action = self._action(model, "&Connect to a server…", self.open_connect_dialog)
        self.serve_action = self._action(model, "&Serve on this computer…", self.open_serve_dialog)
        self.compare_action = self._action(model, "&Compare…", self.open_compare_dialog)
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
        self.composer.sig_auto_changed.connect(c.set_auto)
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
        c.sig_loading.connect(lambda _name: self.speed_label.setText(""))  # not the last one's
        c.sig_context.connect(self.meter.set_use)
        c.sig_speed.connect(self._on_speed)
        c.sig_conversations.connect(self.refresh_conversations)
        c.sig_current.connect(self._on_current)
        c.sig_answer_measured.connect(self._record_answer)

    # -- actions -------------------------------------------------------------------------
    def new_chat(self) -> None:
        """Ctrl+N: an empty chat, with the cursor in the composer."""
        self.controller.new_conversation()
        self.composer.input.setFocus()

    def restore_session(self) -> str:
        """Reopen the last chat and reload (or offer) the last model; returns what it did."""
        from app.ui.session_restore import restore

        return restore(self)

    def send(self, text: str) -> None:
        if self.controller.send(text):
            self.composer.clear()

    def choose_model(self) -> None:
        start = os.path.dirname(self.controller.model_path or "") or os.path.expanduser("~")
        path, _ = QFileDialog.getOpenFileName(
            self, "Load a GGUF model", start, "GGUF models (*.gguf);;All files (*)"
        )
        if path:
            self._load_meta = {}
            self.controller.load_model(path)

    # -- models: wizard, manager, import -------------------------------------------------
    def load_model_with(self, path: str, settings: dict[str, Any],
                        meta: dict[str, Any] | None = None) -> None:  # fmt: skip
        """Load `path` with a plan's settings (context, GPU layers, threads, KV cache);
        `meta` (name, model_id, quant, predicted_tps) goes with the measurements."""
        c = self.controller
        opts = dict(settings)
        c.n_ctx = int(opts.pop("n_ctx", None) or c.n_ctx)
        self._load_meta = {**(meta or {}), "n_gpu_layers": opts.get("n_gpu_layers")}
        c.load_model(path, self._load_meta.get("name"), **opts)

    def open_wizard(self) -> Any:
        """Show the model wizard (window-modal, not blocking); returns it."""
        from app.ui.wizard import ModelWizard

        if self.wizard is not None and self.wizard.isVisible():
            self.wizard.raise_()
            return self.wizard
        self.wizard = ModelWizard(self.env(), self)
        self.wizard.setWindowModality(Qt.WindowModality.WindowModal)
        self.wizard.sig_load_requested.connect(self._wizard_load)
        self.wizard.sig_start_chat.connect(self._wizard_start_chat)
        self.wizard.sig_connect_server.connect(self.open_connect_dialog)
        self.wizard.show()
        self.wizard.start()
        return self.wizard

    def maybe_first_run(self) -> Any:
        """On the very first launch, open the wizard (and remember that it ran)."""
        from app.core import app_state

        if app_state.wizard_done():
            return None
        app_state.mark_wizard_done()
        return self.open_wizard()

    def _wizard_load(self, path: str, settings: dict, option: Any) -> None:
        self._wizard_waiting = True
        meta = {"name": option.name, "model_id": option.model_id, "quant": option.quant,
                "predicted_tps": option.decode_tps,
                "uncalibrated_tps": option.uncalibrated_tps}  # fmt: skip
        self.load_model_with(path, settings, meta)

    def _wizard_start_chat(self, ask: bool, question: str) -> None:
        self.controller.new_conversation()
        if ask:
            self.composer.input.setPlainText(question)
            self.send(question)

    def env(self) -> Any:
        """This machine, the real Hub and the speeds measured here, unless a test set one."""
        if self.choice_env is None:
            from app.core.model_choice import ChoiceEnv

            self.choice_env = ChoiceEnv(stats=self.stats)
        return self.choice_env

    def open_connect_dialog(self) -> Any:
        """ "Connect to a server": test it, pick a model, save it, and load it here."""
        from app.ui.connect_dialog import ConnectDialog

        dialog = ConnectDialog(parent=self.wizard if self._wizard_open() else self)
        dialog.sig_saved.connect(lambda entry: self.load_remote(entry, dialog.api_key))
        dialog.open()
        self.connect_dialog = dialog
        return dialog

    def open_compare_dialog(self) -> Any:
        """Model → Compare: 2-4 models on the same problems, through this window's engine."""
        from app.ui.compare_dialog import open_compare_dialog

        return open_compare_dialog(self)

    def open_serve_dialog(self) -> Any:
        """Model → Serve on this computer: the models for other programs (OpenAI API)."""
        from app.ui.serve_dialog import open_serve_dialog

        return open_serve_dialog(self)

    def load_remote(self, entry: Any, api_key: str | None = None) -> None:
        """Chat with a saved server model (the key from the dialog, else the keyring)."""
        from app.core import remote

        key = api_key if api_key is not None else remote.api_key_for(entry)
        self._load_meta = {"name": entry.display_name}
        self._remote_entry = entry
        if self.manager is not None and self.manager.isVisible():
            self.manager.refresh_servers()
        self.controller.load_model(entry.base_url, entry.display_name, **entry.load_options(key))

    def _wizard_open(self) -> bool:
        return self.wizard is not None and self.wizard.isVisible()

    def open_model_manager(self) -> Any:
        from app.ui.model_manager import ModelManager

        if self.manager is not None and self.manager.isVisible():
            self.manager.raise_()
            return self.manager
        self.manager = ModelManager(self.stats, self.discovery, self)
        self.manager.loaded_path = self._loaded_path
        self.manager.sig_load.connect(self.load_local_model)
        self.manager.sig_import.connect(self.import_gguf)
        self.manager.sig_load_remote.connect(self.load_remote)
        self.manager.sig_connect.connect(self.open_connect_dialog)
        self.manager.show()
        self.manager.refresh()
        return self.manager

    def import_gguf(self, path: str | None = None) -> Any:
        """Pick (or take) a .gguf file, show what it is and how it would run, offer to load."""
        from app.ui.import_model import ImportDialog

        if not path:
            path, _ = QFileDialog.getOpenFileName(
                self, "Import a GGUF model", os.path.expanduser("~"), "GGUF models (*.gguf)"
            )
            if not path:
                return None
        dialog = ImportDialog(path, self.env(), self)
        dialog.sig_load.connect(self.load_model_with)
        dialog.sig_load.connect(lambda *_a: self._refresh_manager())  # listed at once
        dialog.open()
        dialog.start()
        return dialog

    def load_local_model(self, path: str) -> None:
        """Load a model found on disk (a GGUF file, or an MLX model folder: the MLX engine)
        with settings planned for this machine."""
        from app.core import model_choice
        from app.ui.wizard.tasks import Task

        profile = getattr(self.choice_env, "profile", None)
        task = Task(lambda: model_choice.describe_local(path, profile or model_choice.detect()),
                    self)  # fmt: skip

        def planned(info: Any) -> None:
            self.load_model_with(path, info.load_settings(), {"name": info.name})

        def failed(_exc: Exception, _tb: str) -> None:
            self._load_meta = {}
            engine = {"engine": "mlx"} if os.path.isdir(path) else {}
            self.controller.load_model(path, **engine)  # the engine says what is wrong

        task.sig_result.connect(planned)
        task.sig_error.connect(failed)
        task.finished.connect(lambda: self._tasks.remove(task) if task in self._tasks else None)
        self._tasks.append(task)
        task.start()

    def refresh_auto(self) -> Any:
        """Offer Auto next to the model choice when a small and a big model are installed
        (found and planned on a worker thread); returns the task. Either may be a GGUF file
        or an MLX model folder (loaded with the MLX engine; left out where MLX is not
        installed)."""
        from app.core import model_choice, model_discovery
        from app.core.routing import pick_pair
        from app.ui.wizard.tasks import Task

        discover = self.discovery or model_discovery.discover_models
        profile = getattr(self.choice_env, "profile", None)

        def find() -> Any:
            nonlocal profile
            models = list(discover())
            if any(getattr(m, "format", "gguf") == "mlx" for m in models):
                profile = profile or model_choice.detect()
                if not profile.engines.mlx_installed:
                    models = [m for m in models if getattr(m, "format", "gguf") != "mlx"]
            pair = pick_pair(models)
            if pair is None:
                return None
            sides = []
            for side in (pair.small, pair.big):
                try:  # an MLX folder: its JSON files, never the GGUF header reader
                    info = model_choice.describe_local(side.path, profile or model_choice.detect())
                    opts = info.load_settings()
                except Exception:  # the engine says what is wrong when it loads
                    opts = {"engine": "mlx"} if side.format == "mlx" else {}
                sides.append(replace(side, load_opts=opts))
            return replace(pair, small=sides[0], big=sides[1])

        def found(pair: Any) -> None:
            self.controller.set_auto_pair(pair)
            if pair is None:
                self.composer.set_auto_available(None)
            else:
                self.composer.set_auto_available(pair.describe(), pair.big.thinking_switch)

        task = Task(find, self)
        task.sig_result.connect(found)
        task.finished.connect(lambda: self._tasks.remove(task) if task in self._tasks else None)
        self._tasks.append(task)
        task.start()
        return task

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if any(u.toLocalFile().lower().endswith(".gguf") for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls()]
        ggufs = [p for p in paths if p.lower().endswith(".gguf")]
        if ggufs:
            event.acceptProposedAction()
            self.import_gguf(ggufs[0])

    def _record_answer(self, path: str, done: Any, n_ctx: int) -> None:
        """Store the measured speed, memory and thinking length of a complete answer for the
        model that wrote it (`path`: a load while it streamed may have replaced that model
        since)."""
        if not path or getattr(done, "stop_reason", "") != "eos":
            return
        extra = getattr(done, "extra", {}) or {}
        meta = self._meta_for(path)
        self.stats.record_answer(
            path, done.decode_tps, completion_tokens=done.completion_tokens,
            peak_memory_bytes=extra.get("peak_memory_bytes") or extra.get("peak_rss_bytes"),
            predicted_tps=meta.get("uncalibrated_tps") or meta.get("predicted_tps"),
            name=meta.get("name") or "",
            model_id=meta.get("model_id"), quant=meta.get("quant"), n_ctx=n_ctx,
            n_gpu_layers=meta.get("n_gpu_layers"),
            thinking_tokens=getattr(done, "thinking_tokens", 0) or 0,
            thinking_cut=bool(getattr(done, "thinking_ended_by", None)
                              or getattr(done, "ended_in_thinking", False)),
        )  # fmt: skip

    def _meta_for(self, path: str) -> dict[str, Any]:
        meta = dict(self._load_meta) if path == self.controller.model_path else {}
        if not meta.get("model_id"):
            from app.core.catalog import CatalogError
            from app.core.model_choice import catalog_match

            try:
                match = catalog_match(path)
            except (CatalogError, OSError):
                match = None
            if match:
                meta["model_id"], meta["quant"] = match
        meta.setdefault("name", self.controller.model_name or os.path.basename(path))
        return meta

    def open_settings(self) -> None:
        from app.ui.settings_dialog import SettingsDialog

        preset = preset_for_model(self.controller.model_name)
        dialog = SettingsDialog(self.controller.settings(), preset, self,
                                threads=self.controller.threads)  # fmt: skip
        if dialog.exec():
            self.controller.set_settings(dialog.settings())
            self.controller.threads = dialog.threads()  # used from the next load on
            self.session_state.set_threads(dialog.threads())
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

    def open_logs_folder(self) -> Any:
        """Show the log folder in the file manager (what to attach to a bug report); with no
        file manager, its path (copied); returns that message box, if shown."""
        from app.core.logs import log_dir
        from app.ui.reveal import reveal_folder

        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        return reveal_folder(self, folder, "The logs folder")

    def _loaded_path(self) -> str | None:
        """The file of the model loaded now (None: none, or a server)."""
        c = self.controller
        return c.model_path if c.model_info is not None else None

    def _refresh_manager(self) -> None:
        if self.manager is not None and self.manager.isVisible():
            self.manager.refresh()

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
        self._refresh_manager()  # the loaded model is marked there
        if self._wizard_waiting and self.wizard is not None:
            self._wizard_waiting = False
            self.wizard.load_finished(info is not None)
        if info is not None and self.controller.model_path:
            from app.ui.session_restore import remember_model

            remember_model(self.session_state, self.controller, self._remote_entry)
            meta = self._meta_for(self.controller.model_path)
            self.stats.touch(self.controller.model_path, meta.get("name") or "",
                             model_id=meta.get("model_id"), quant=meta.get("quant"))  # fmt: skip
        if info is None:
            self.speed_label.setText("")
            c = self.controller
            if c.model_path and c.load_failure:  # the load failed: the engine did not crash
                self.model_label.set_failed(c.load_label or os.path.basename(c.model_path),
                                            c.load_failure)  # fmt: skip
            elif c.model_path:
                self.model_label.setText("Engine stopped — Reload engine to continue")
            else:
                self.model_label.set_none()
            self.chat.empty.set_model(None)
            return
        self.composer.set_can_steer(info.get("engine") != "openai")
        path = info.get("path") or self.controller.model_path or ""
        engine = ENGINE_NAMES.get(info.get("engine", ""), info.get("engine"))
        quant = info.get("quant") or quant_from_name(os.path.basename(path))
        self.model_label.set_model(self.controller.model_name or "model", quant, engine)
        self.composer.set_budget(self.controller.settings().thinking_budget)

    def _on_speed(self, tps: float | None) -> None:
        text = f"{tps:.1f} tokens/s" if tps else ""
        predicted = self._load_meta.get("predicted_tps")
        if tps and predicted:
            text += f" (predicted {predicted:.0f})"
        self.speed_label.setText(text)

    def _on_current(self, conversation_id: int | None) -> None:
        from app.ui.session_restore import remember_chat

        remember_chat(self.session_state, conversation_id)
        self.refresh_conversations()
        self.composer.set_budget(self.controller.settings().thinking_budget)
        if conversation_id is None:
            self.meter.set_use(ContextUse(self.controller.n_ctx if self.controller.model_info
                                          else 0))  # fmt: skip

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        for child in (self.wizard, self.manager):
            if child is not None:
                child.close()
        for task in list(self._tasks):
            task.wait(5000)
        self.controller.shutdown()
        self.bridge.shutdown()
        super().closeEvent(event)
