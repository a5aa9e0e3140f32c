"""The model manager: every model on this computer, wherever it came from, and what to do
with it — load, delete (saying how much space that frees), verify again, show on disk.

Only Ponder's downloads (the Hugging Face cache) can be deleted from disk, and never the
model that is loaded; a file the user imported and the models of LM Studio and Ollama are
only taken off the list ("Remove from list"): their files stay (`app.core.model_removal`).

Models come from `app.core.model_discovery` (the Hugging Face cache, LM Studio's folder,
Ollama's store and files the user added), scanned on a worker thread; the measured speed
comes from `app.core.model_stats`. Files of other tools are used in place, never copied.
GGUF files and MLX model folders are listed alike (Format: GGUF or MLX); Load gives the
window the path, and the window loads a folder with the MLX engine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core import model_discovery, model_removal, remote
from app.core.downloads import human_size
from app.core.model_stats import ModelStats, measured_words
from app.ui.safe_text import ask, plain, tip
from app.ui.wizard.style import list_table, stylesheet
from app.ui.wizard.tasks import Task

COLUMNS = ("Model", "Quant", "Format", "Size", "Found in", "Last used", "Measured here")


def ago(ts: float | None) -> str:
    if not ts:
        return "never"
    s = max(0.0, time.time() - ts)
    if s < 120:
        return "just now"
    if s < 3600 * 2:
        return f"{int(s // 60)} minutes ago"
    if s < 86400 * 2:
        return f"{int(s // 3600)} hours ago"
    return f"{int(s // 86400)} days ago"


class ModelManager(QDialog):
    sig_load = Signal(str)  # path of the file (or MLX model folder) to load
    sig_load_remote = Signal(object)  # a saved remote.RemoteModel to chat with
    sig_connect = Signal()  # "Connect to a server…"
    sig_import = Signal()  # "Add a GGUF file…"
    sig_refreshed = Signal()
    sig_message = Signal(str)

    def __init__(self, stats: ModelStats | None = None,
                 discover: Callable[..., list[model_discovery.FoundModel]] | None = None,
                 parent: QWidget | None = None,
                 remote_list: Path | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.setWindowTitle("Ponder — models on this computer")
        self.remote_list = remote_list  # saved servers (None: the user config folder)
        self.servers: list[remote.RemoteModel] = []
        self.setObjectName("ManagerRoot")
        self.setStyleSheet(stylesheet())
        self.resize(980, 520)
        self.stats = stats or ModelStats()
        self.discover = discover or model_discovery.discover_models
        self.models: list[model_discovery.FoundModel] = []
        self.task: Task | None = None
        self._scanning = False  # until the scan's result is shown (its thread ends later)
        self._rescan = False  # a refresh was asked for during a scan: scan again after it
        # asks the user to confirm; tests replace it
        self.confirm: Callable[[str, str], bool] = self._ask
        # the path of the model loaded in the window (the main window sets it)
        self.loaded_path: Callable[[], str | None] = lambda: None

        box = QVBoxLayout(self)
        box.setContentsMargins(20, 16, 20, 14)
        title = QLabel("Models on this computer", self)
        title.setObjectName("PageTitle")
        box.addWidget(title)
        lead = QLabel(
            "Found in the Hugging Face cache, LM Studio, Ollama and the files you added. Models "
            "of other apps are used where they are, without copying.",
            self,
        )
        lead.setObjectName("PageLead")
        lead.setWordWrap(True)
        box.addWidget(lead)

        self.table = list_table(COLUMNS, self)
        self.table.doubleClicked.connect(lambda _i: self.load_selected())
        self.table.itemSelectionChanged.connect(self._update_buttons)
        box.addWidget(self.table, 1)

        self.status = plain(QLabel("", self))  # names, paths and errors, literally
        self.status.setObjectName("Muted")
        self.status.setWordWrap(True)
        box.addWidget(self.status)

        row = QHBoxLayout()
        self.load_button = QPushButton("Load", self)
        self.load_button.setObjectName("Primary")
        self.delete_button = QPushButton("Delete…", self)
        self.verify_button = QPushButton("Verify again", self)
        self.show_button = QPushButton("Show on disk", self)
        self.add_button = QPushButton("Add a GGUF file…", self)
        self.refresh_button = QPushButton("Refresh", self)
        for b in (self.load_button, self.delete_button, self.verify_button, self.show_button):
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(self.add_button)
        row.addWidget(self.refresh_button)
        box.addLayout(row)
        self._build_servers(box)
        self.load_button.clicked.connect(self.load_selected)
        self.delete_button.clicked.connect(self.delete_selected)
        self.verify_button.clicked.connect(self.verify_selected)
        self.show_button.clicked.connect(self.show_selected)
        self.add_button.clicked.connect(self.sig_import.emit)
        self.refresh_button.clicked.connect(self.refresh)
        self._update_buttons()

    def _build_servers(self, box: QVBoxLayout) -> None:
        """Models on servers (vLLM, SGLang, llama-server, Ollama), saved like local ones."""
        heading = QLabel("On servers", self)
        heading.setStyleSheet("font-weight: 600; margin-top: 8px;")
        box.addWidget(heading)
        self.server_list = QListWidget(self)
        self.server_list.setMaximumHeight(96)
        self.server_list.itemDoubleClicked.connect(lambda _i: self.load_server())
        self.server_list.itemSelectionChanged.connect(self._update_buttons)
        box.addWidget(self.server_list)
        row = QHBoxLayout()
        self.server_load_button = QPushButton("Load", self)
        self.server_forget_button = QPushButton("Forget", self)
        self.connect_button = QPushButton("Connect to a server…", self)
        row.addWidget(self.server_load_button)
        row.addWidget(self.server_forget_button)
        row.addStretch(1)
        row.addWidget(self.connect_button)
        box.addLayout(row)
        self.server_load_button.clicked.connect(self.load_server)
        self.server_forget_button.clicked.connect(self.forget_server)
        self.connect_button.clicked.connect(self.sig_connect.emit)

    def refresh_servers(self) -> None:
        """The saved server models (a small local file, no network)."""
        self.servers = remote.saved_remotes(self.remote_list)
        self.server_list.clear()
        for entry in self.servers:
            self.server_list.addItem(f"{entry.display_name}  ·  {remote.safe_url(entry.base_url)}")
        if not self.servers:
            self.server_list.addItem("None yet: Connect to a server… adds one.")
            self.server_list.item(0).setFlags(Qt.ItemFlag.NoItemFlags)
        self._update_buttons()

    @property
    def selected_server(self) -> remote.RemoteModel | None:
        row = self.server_list.currentRow()
        items = self.server_list.selectedItems()
        return self.servers[row] if items and 0 <= row < len(self.servers) else None

    def load_server(self) -> None:
        entry = self.selected_server
        if entry is not None:
            self.sig_load_remote.emit(entry)
            self._say(f"Connecting to {entry.display_name}…")

    def forget_server(self) -> None:
        entry = self.selected_server
        if entry is not None and self.confirm(
            "Forget this server?",
            f"Forget {entry.display_name}? Its API key is removed from the keyring too. The "
            "server itself is not touched.",
        ):
            remote.forget_remote(entry, self.remote_list)
            self.refresh_servers()

    # -- listing -------------------------------------------------------------------------
    def refresh(self) -> None:
        """Scan for models on a worker thread; the table fills when it is done."""
        self.refresh_servers()
        if self._scanning:  # its result may predate what changed: scan again after it
            self._rescan = True
            return
        self._scanning = True
        self.status.setText("Looking for models…")
        last_used = self.stats.last_used()
        self.task = Task(lambda: self.discover(last_used=last_used), self)
        self.task.sig_result.connect(self._show)
        self.task.sig_error.connect(self._scan_failed)
        self.task.start()

    def _scan_failed(self, exc: Exception, _tb: str) -> None:
        self._scanning = False
        self._say(f"Could not list models: {exc}")
        self._update_buttons()

    def _show(self, models: list[model_discovery.FoundModel]) -> None:
        self._scanning = False
        if self._rescan:
            self._rescan = False
            self.refresh()
            return
        self.models = list(models)
        self.table.setRowCount(len(self.models))
        loaded = self._loaded_key()
        for row, m in enumerate(self.models):
            measured = measured_words(self.stats.get(m.path))
            name = f"{m.name}  · loaded" if m.key == loaded else m.name
            cells = (name, m.quant or "—", m.format.upper(), human_size(m.size_bytes),
                     m.source_label, ago(m.last_used), measured or "not yet")  # fmt: skip
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if m.key == loaded:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                tip_text = tip(f"{m.path}\n{m.origin}" if m.origin else str(m.path))
                if m.problem:
                    tip_text = tip(f"Cannot be loaded: {m.problem}")
                    item.setForeground(Qt.GlobalColor.red)
                item.setToolTip(tip_text)
                self.table.setItem(row, col, item)
        total = sum(m.size_bytes for m in self.models)
        self._say(f"{len(self.models)} models, {human_size(total)} in all." if self.models
                  else "No models yet: the wizard downloads one, or add a GGUF file.")  # fmt: skip
        if self.models:
            self.table.selectRow(0)
        self._update_buttons()
        self.sig_refreshed.emit()

    def _say(self, text: str) -> None:
        self.status.setText(text)
        self.sig_message.emit(text)

    @property
    def selected(self) -> model_discovery.FoundModel | None:
        rows = {i.row() for i in self.table.selectedItems()}
        return self.models[min(rows)] if rows else None

    def select_path(self, path: str | os.PathLike[str]) -> bool:
        key = os.path.realpath(path)
        for row, m in enumerate(self.models):
            if m.key == key or str(m.path) == str(path):
                self.table.selectRow(row)
                return True
        return False

    def _loaded_key(self) -> str | None:
        path = self.loaded_path()
        return os.path.realpath(path) if path else None

    def is_loaded(self, m: model_discovery.FoundModel) -> bool:
        return m.key == self._loaded_key()

    def _update_buttons(self) -> None:
        m = self.selected
        busy = self._scanning
        for b in (self.delete_button, self.verify_button, self.show_button):
            b.setEnabled(m is not None and not busy)
        ours = m is not None and model_removal.deletable_from_disk(m)
        self.delete_button.setText("Delete…" if ours or m is None else "Remove from list…")
        self.delete_button.setToolTip("")
        if m is not None and ours and self.is_loaded(m):
            self.delete_button.setEnabled(False)  # never deleted under the engine
            self.delete_button.setToolTip("This model is loaded: load another one to delete it.")
        elif m is not None and not ours:
            self.delete_button.setToolTip(
                f"Takes it off Ponder's list; the file stays ({m.source_label})."
            )
        self.load_button.setEnabled(m is not None and not m.problem and not busy)
        if hasattr(self, "server_list"):
            has = self.selected_server is not None
            self.server_load_button.setEnabled(has)
            self.server_forget_button.setEnabled(has)

    # -- actions -------------------------------------------------------------------------
    def load_selected(self) -> None:
        m = self.selected
        if m is None or m.problem:
            return
        self.sig_load.emit(str(m.path))
        self._say(f"Loading {m.name}…")

    def delete_selected(self) -> None:
        """Delete a Ponder download from disk, or take anything else off the list."""
        m = self.selected
        if m is None:
            return
        if not model_removal.deletable_from_disk(m):
            self.remove_selected()
            return
        if self.is_loaded(m):
            self._say(f"{m.name} is loaded, so it is not deleted: load another model first.")
            return
        freed = model_discovery.freeable_bytes(m)
        text = f"Delete {m.name} ({m.quant or m.format})? This frees {human_size(freed)}."
        if freed < m.size_bytes:
            text += "\n\nSome of its files are shared with other models and stay."
        if not self.confirm("Delete model", text):
            return
        try:
            got = model_discovery.delete_model(m)
        except OSError as exc:
            self._say(f"Could not delete {m.name}: {exc.strerror or exc}.")
            return
        self.stats.forget(m.path)
        self._say(f"Deleted {m.name}; {human_size(got)} freed.")
        self.refresh()

    def remove_selected(self) -> None:
        """Take the selected model off the list; its file is not touched."""
        m = self.selected
        if m is None:
            return
        owner = ("it stays in your folder" if m.source == "added"
                 else f"{m.source_label} keeps it")  # fmt: skip
        text = (f"Remove {m.name} ({m.quant or m.format}) from Ponder's list? The file is not "
                f"deleted: {owner}.\n\n{m.path}")  # fmt: skip
        if not self.confirm("Remove from list", text):
            return
        try:
            model_removal.remove_from_list(m)
        except OSError as exc:
            self._say(f"Could not remove {m.name} from the list: {exc.strerror or exc}.")
            return
        self._say(f"Removed {m.name} from the list; the file is still at {m.path}.")
        self.refresh()

    def verify_selected(self) -> None:
        m = self.selected
        if m is None:
            return
        self._say(f"Checking {m.name}…")
        self.verify_task = Task(lambda: model_discovery.verify_model(m), self)
        self.verify_task.sig_result.connect(lambda r: self._say(r[1]))
        self.verify_task.sig_error.connect(lambda exc, _tb: self._say(f"Check failed: {exc}"))
        self.verify_task.start()

    def show_selected(self) -> None:
        m = self.selected
        if m is not None:
            from app.ui.reveal import reveal_folder

            reveal_folder(self, m.path if m.format == "mlx" else m.path.parent)

    def _ask(self, title: str, text: str) -> bool:
        return ask(self, title, text)

    def done(self, result: int) -> None:  # noqa: D102 - wait for a scan before closing
        for task in (self.task, getattr(self, "verify_task", None)):
            if task is not None and task.isRunning():
                task.wait(10_000)
        super().done(result)


def found_summary(models: list[Any]) -> str:
    """'3 models: 2 from the Hugging Face cache, 1 from Ollama' (for logs and tests)."""
    from collections import Counter

    counts = Counter(m.source_label for m in models)
    parts = [f"{n} from {label}" for label, n in counts.items()]
    return f"{len(models)} models" + (": " + ", ".join(parts) if parts else "")
