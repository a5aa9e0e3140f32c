"""Model → Compare…: 2-4 installed models or servers on the same problems, side by side.

The person picks the models (the model manager's list: files and saved servers), a problem
set (the built-in one, a JSONL file, or the composer's text) and how many answers per
problem; the comparison runs on a `CompareThread` through the window's engine (shared with
the chat like the local server: app/core/engine_share.py), one model at a time. Progress and
time left come back as signals; Cancel stops the answer being written, Resume answers only
what is missing (answers are saved as they arrive). Results: app/ui/compare_results.py;
Export writes the Markdown and CSV reports of app/core/compare/report.py.

Widgets are touched on the GUI thread only; model names and output are plain text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QThread, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.compare import (
    CompareRunner,
    CompareSettings,
    CompareStore,
    ModelSpec,
    ProblemSetError,
    Progress,
    builtin_problems,
    from_text,
    load_problems,
    load_summary,
)
from app.core.compare.report import time_left, to_csv, to_markdown
from app.ui.compare_results import CompareResults
from app.ui.safe_text import plain

MIN_MODELS, MAX_MODELS = 2, 4
SPEC_ROLE = Qt.ItemDataRole.UserRole


class CompareThread(QThread):
    """Runs one comparison (`runner.run(run_id)`) off the GUI thread."""

    sig_progress = Signal(object)  # Progress
    sig_done = Signal(str)  # complete, cancelled, failed, or "error: …"

    def __init__(self, runner: CompareRunner, run_id: int, parent: Any = None) -> None:
        super().__init__(parent)
        self.runner, self.run_id = runner, run_id
        runner.on_progress = self.sig_progress.emit

    def run(self) -> None:
        try:
            status = self.runner.run(self.run_id)
        except Exception as exc:  # noqa: BLE001 - said in the dialog, never lost
            status = f"error: {getattr(exc, 'message', '') or exc}"
        self.sig_done.emit(status)


class CompareDialog(QDialog):
    """Choose models and problems, run, watch, cancel/resume, read, export."""

    def __init__(self, client: Any, store: CompareStore, choices: list[ModelSpec], *,
                 share: Any = None, stats: Any = None, composer_text: str = "",
                 planner: Any = "plan", parent: QWidget | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.setWindowTitle("Compare models")
        self.resize(1100, 760)
        self.client, self.store, self.share, self.stats = client, store, share, stats
        self.composer_text = composer_text
        self.planner = planner
        self.run_id: int | None = None
        self.worker_thread: CompareThread | None = None
        self.runner: CompareRunner | None = None
        self.problem_file: str | None = None
        v = QVBoxLayout(self)
        v.addWidget(self._build_setup(choices))
        row = QHBoxLayout()
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.status = plain(QLabel("Choose 2 to 4 models and a problem set, then Start.", self))
        row.addWidget(self.progress, 1)
        self.start_button = QPushButton("Start", self)
        self.cancel_button = QPushButton("Cancel", self)
        self.resume_button = QPushButton("Resume", self)
        for button, slot in ((self.start_button, self.start), (self.cancel_button, self.cancel),
                             (self.resume_button, self.resume)):  # fmt: skip
            button.clicked.connect(slot)
            row.addWidget(button)
        v.addLayout(row)
        v.addWidget(self.status)
        self.results = CompareResults(self)
        v.addWidget(self.results, 1)
        out = QHBoxLayout()
        out.addStretch(1)
        self.md_button = QPushButton("Export Markdown…", self)
        self.csv_button = QPushButton("Export CSV…", self)
        self.md_button.clicked.connect(lambda: self._export_as("Markdown", "md"))
        self.csv_button.clicked.connect(lambda: self._export_as("CSV", "csv"))
        out.addWidget(self.md_button)
        out.addWidget(self.csv_button)
        v.addLayout(out)
        self._offer_unfinished()
        self._update_buttons()
        if parent is not None:  # the window closing stops the comparison first
            parent.installEventFilter(self)

    # -- setup ---------------------------------------------------------------------------
    def _build_setup(self, choices: list[ModelSpec]) -> QWidget:
        box = QGroupBox("Models and problems", self)
        grid = QGridLayout(box)
        self.model_list = QListWidget(box)
        for spec in choices:
            item = QListWidgetItem(spec.label)  # plain text: a name from a file or a server
            item.setData(SPEC_ROLE, spec)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            self.model_list.addItem(item)
        self.model_list.setMaximumHeight(110)
        self.model_list.itemChanged.connect(lambda _i: self._update_buttons())
        grid.addWidget(QLabel("Models (2 to 4; the first is the reference):", box), 0, 0)
        grid.addWidget(self.model_list, 1, 0, 4, 1)
        self.builtin_radio = QRadioButton(f"Built-in set ({len(builtin_problems())} problems, "
                                          "easy to hard)", box)  # fmt: skip
        self.file_radio = QRadioButton("A file of problems (JSONL)…", box)
        self.text_radio = QRadioButton("The text in the composer", box)
        self.text_radio.setEnabled(bool(self.composer_text.strip()))
        self.builtin_radio.setChecked(True)
        group = QButtonGroup(box)
        for k, radio in enumerate((self.builtin_radio, self.file_radio, self.text_radio)):
            group.addButton(radio)
            grid.addWidget(radio, 1 + k, 1)
        self.file_radio.clicked.connect(self._choose_file)
        self.file_label = plain(QLabel("", box))
        grid.addWidget(self.file_label, 4, 1)
        self.repeats = QSpinBox(box)
        self.repeats.setRange(1, 8)
        self.repeats.setValue(2)
        self.repeats.setSuffix(" answers per problem")
        grid.addWidget(self.repeats, 0, 1)
        return box

    def chosen(self) -> list[ModelSpec]:
        """The checked models, in list order (the first is the reference)."""
        out = []
        for i in range(self.model_list.count()):
            item = self.model_list.item(i)
            if item.checkState() == Qt.CheckState.Checked:
                out.append(item.data(SPEC_ROLE))
        return out

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Problems", "", "JSONL (*.jsonl);;All (*)")
        if path:
            self.set_problem_file(path)
        elif not self.problem_file:
            self.builtin_radio.setChecked(True)

    def set_problem_file(self, path: str) -> None:
        self.problem_file = path
        self.file_radio.setChecked(True)
        self.file_label.setText(Path(path).name)

    def problems(self) -> list[Any]:
        if self.text_radio.isChecked():
            return from_text(self.composer_text)
        if self.file_radio.isChecked() and self.problem_file:
            return load_problems(self.problem_file)
        return builtin_problems()

    # -- running -------------------------------------------------------------------------
    def _runner(self) -> CompareRunner:
        kwargs: dict[str, Any] = {"share": self.share, "stats": self.stats}
        if self.planner != "plan":
            kwargs["planner"] = self.planner
        return CompareRunner(self.client, self.store, **kwargs)

    def start(self) -> None:
        models = self.chosen()
        if not MIN_MODELS <= len(models) <= MAX_MODELS:
            self.status.setText("Choose 2 to 4 models.")
            return
        try:
            problems = self.problems()
        except (ProblemSetError, OSError) as exc:
            self.status.setText(str(exc))
            return
        runner = self._runner()
        self.run_id = runner.create(models, problems,
                                    CompareSettings(repeats=self.repeats.value()))  # fmt: skip
        self._launch(runner)

    def resume(self) -> None:
        if self.run_id is not None and not self.running:
            self._launch(self._runner())

    def cancel(self) -> None:
        if self.runner is not None and self.running:
            self.runner.cancel()
            self.status.setText("Stopping… the answers so far are kept.")

    @property
    def running(self) -> bool:
        return self.worker_thread is not None and self.worker_thread.isRunning()

    def _launch(self, runner: CompareRunner) -> None:
        assert self.run_id is not None
        self.runner = runner
        self.worker_thread = CompareThread(runner, self.run_id, self)
        self.worker_thread.sig_progress.connect(self._on_progress)
        self.worker_thread.sig_done.connect(self._on_done)
        self._refresh()
        self.status.setText("Starting…")
        self.worker_thread.start()
        self._update_buttons()

    def _on_progress(self, p: Progress) -> None:
        self.progress.setRange(0, max(1, p.total))
        self.progress.setValue(p.done)
        left = time_left(p.seconds_left)
        if p.phase in ("loading", "model_failed"):
            text = p.message
        elif p.phase in ("answering", "answered"):
            text = f"{p.model} · problem {p.problem_index + 1}, answer {p.attempt + 1} · "
            text += f"{p.done} of {p.total} answers"
        else:
            text = p.message
        self.status.setText(text + (f" — {left}" if left else ""))
        if p.phase in ("answered", "model_failed"):
            self._refresh()

    def _on_done(self, status: str) -> None:
        self._refresh()
        summary = self.results.summary
        done = f"{summary.done} of {summary.total} answers" if summary else ""
        words = {"complete": f"Done: {done}.",
                 "cancelled": f"Stopped after {done}. Resume answers the rest.",
                 "failed": f"{done}: a model could not be loaded; Resume tries again."}  # fmt: skip
        self.status.setText(words.get(status, status))
        self._update_buttons()

    def _refresh(self) -> None:
        if self.run_id is not None:
            self.results.set_summary(load_summary(self.store, self.run_id))
            s = self.results.summary
            if s is not None:
                self.progress.setRange(0, max(1, s.total))
                self.progress.setValue(s.done)

    def _offer_unfinished(self) -> None:
        """The last comparison that stopped early can be resumed from here."""
        unfinished = self.store.unfinished()
        if unfinished:
            self.run_id = unfinished[0].id
            self._refresh()
            self.status.setText(f"“{unfinished[0].title}” stopped before the end: Resume "
                                "answers the rest, or Start a new comparison.")  # fmt: skip

    def _update_buttons(self) -> None:
        busy = self.running
        record = self.store.run(self.run_id) if self.run_id is not None else None
        self.start_button.setEnabled(not busy and MIN_MODELS <= len(self.chosen()) <= MAX_MODELS)
        self.cancel_button.setEnabled(busy)
        self.resume_button.setEnabled(not busy and record is not None
                                      and record.status != "complete")  # fmt: skip
        self.model_list.setEnabled(not busy)
        has = self.results.summary is not None and self.results.summary.done > 0
        self.md_button.setEnabled(has)
        self.csv_button.setEnabled(has)

    # -- export --------------------------------------------------------------------------
    def export(self, path: str | Path, kind: str) -> Path:
        """Write the Markdown (`md`) or CSV (`csv`) report of the results shown."""
        summary = self.results.summary
        if summary is None:
            raise ValueError("nothing to export yet")
        text = to_markdown(summary) if kind == "md" else to_csv(summary)
        out = Path(path)
        out.write_text(text, encoding="utf-8", newline="" if kind == "csv" else None)
        return out

    def _export_as(self, name: str, ext: str) -> None:
        path, _ = QFileDialog.getSaveFileName(self, f"Export {name}", f"comparison.{ext}",
                                              f"{name} (*.{ext})")  # fmt: skip
        if path:
            try:
                self.status.setText(f"Saved {Path(self.export(path, ext)).name}.")
            except OSError as exc:
                self.status.setText(f"Could not save {Path(path).name}: {exc.strerror or exc}.")

    def stop_and_wait(self, timeout_ms: int = 20_000) -> None:
        """Cancel a running comparison and wait for its thread (the answers are kept)."""
        if self.running and self.runner is not None and self.worker_thread is not None:
            self.runner.cancel()
            self.worker_thread.wait(timeout_ms)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        self.stop_and_wait()
        super().closeEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Close and watched is self.parent():
            self.stop_and_wait()
        return False


def open_compare_dialog(window: Any) -> CompareDialog:
    """Model → Compare…: the window's engine (shared with its chat), database and models."""
    from app.core.compare.models import available_models

    store = CompareStore(window.store.path)
    discover = getattr(window, "discovery", None)
    dialog = CompareDialog(
        window.bridge.client, store, available_models(discover), share=window.bridge.worker.share,
        stats=window.stats, composer_text=window.composer.input.toPlainText(), parent=window,
    )  # fmt: skip
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.finished.connect(lambda _r: store.close())
    dialog.show()
    return dialog
