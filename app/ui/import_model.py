"""Import a GGUF file the user picked or dropped on the window: show what it is (read from its
header with `app.core.model_choice.describe_gguf`, without loading it), how it would run
on this machine, and load it with those settings. The file is remembered (not copied) so
the model manager lists it from then on.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core import model_choice, model_discovery
from app.core.downloads import human_size
from app.ui.safe_text import plain
from app.ui.wizard.style import stylesheet
from app.ui.wizard.tasks import Task


class ImportDialog(QDialog):
    sig_load = Signal(str, object, object)  # path, load settings, meta
    sig_described = Signal(object)  # LocalModelInfo, or an exception

    def __init__(self, path: str, env: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path = path
        self.env = env
        self.info: model_choice.LocalModelInfo | None = None
        self.setWindowTitle("Ponder — import a GGUF model")
        self.setObjectName("WizardRoot")
        self.setStyleSheet(stylesheet())
        self.resize(640, 380)
        box = QVBoxLayout(self)
        box.setContentsMargins(22, 18, 22, 14)
        # the file's name, its metadata and errors about it are shown literally
        self.title = plain(QLabel("Reading the file…", self))
        self.title.setObjectName("PageTitle")
        self.title.setWordWrap(True)
        box.addWidget(self.title)
        self.file_label = plain(QLabel(path, self))
        self.file_label.setObjectName("Muted")
        self.file_label.setWordWrap(True)
        box.addWidget(self.file_label)
        self.form = QFormLayout()
        self.form.setHorizontalSpacing(16)
        self.fields: dict[str, QLabel] = {}
        for key in ("Architecture", "Size", "Quantization", "Trained context", "Chat template"):
            value = plain(QLabel("…", self))
            value.setObjectName("FactValue")
            self.fields[key] = value
            name = QLabel(key, self)
            name.setObjectName("FactLabel")
            self.form.addRow(name, value)
        box.addLayout(self.form)
        self.plan_label = plain(QLabel("", self))
        self.plan_label.setObjectName("Big")
        self.plan_label.setWordWrap(True)
        box.addWidget(self.plan_label)
        box.addStretch(1)
        row = QHBoxLayout()
        row.addStretch(1)
        self.cancel_button = QPushButton("Cancel", self)
        self.load_button = QPushButton("Load this model", self)
        self.load_button.setObjectName("Primary")
        self.load_button.setEnabled(False)
        row.addWidget(self.cancel_button)
        row.addWidget(self.load_button)
        box.addLayout(row)
        self.cancel_button.clicked.connect(self.reject)
        self.load_button.clicked.connect(self.load)
        self.task: Task | None = None

    def start(self) -> None:
        """Read the header and plan it, on a worker thread."""
        profile = getattr(self.env, "profile", None)

        def work() -> model_choice.LocalModelInfo:
            return model_choice.describe_gguf(self.path, profile or model_choice.detect())

        self.task = Task(work, self)
        self.task.sig_result.connect(self._show)
        self.task.sig_error.connect(lambda exc, _tb: self._fail(exc))
        self.task.start()

    def _show(self, info: model_choice.LocalModelInfo) -> None:
        self.info = info
        self.title.setText(info.name)
        f = self.fields
        f["Architecture"].setText(info.architecture or "unknown")
        f["Size"].setText(human_size(info.size_bytes))
        quant = info.quant or "unknown"
        note = model_choice.quant_quality(info.quant) if info.quant else ""
        f["Quantization"].setText(f"{quant} — {note}" if note else quant)
        f["Trained context"].setText(f"{info.context_length:,} tokens" if info.context_length
                                     else "unknown")  # fmt: skip
        f["Chat template"].setText(
            "yes" if info.has_chat_template
            else "none: Ponder uses a generic one, answers may be odd"
        )  # fmt: skip
        self.plan_label.setText("On this computer: " + info.summary())
        runs = info.plan is None or info.plan.mode in ("gpu", "hybrid", "cpu")
        self.load_button.setEnabled(runs)
        self.sig_described.emit(info)

    def _fail(self, exc: Exception) -> None:
        self.title.setText("This file cannot be used")
        self.plan_label.setText(f"{exc}".rstrip(".") + ".")
        for value in self.fields.values():
            value.setText("—")
        self.load_button.setEnabled(False)
        self.sig_described.emit(exc)

    def load(self) -> None:
        if self.info is None:
            return
        try:
            model_discovery.add_local_model(self.path)
        except (ValueError, OSError):
            pass  # still loadable this time; the manager just won't list it
        meta = {"name": self.info.name}
        if self.info.plan is not None:
            meta["predicted_tps"] = self.info.plan.decode_tps
        self.sig_load.emit(str(self.info.path), self.info.load_settings(), meta)
        self.accept()

    def done(self, result: int) -> None:  # noqa: D102
        if self.task is not None and self.task.isRunning():
            self.task.wait(10_000)
        super().done(result)
