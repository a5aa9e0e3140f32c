"""The model wizard: from first launch to a running reasoning model in four steps.

    wizard = ModelWizard(ChoiceEnv(), parent=window)
    wizard.sig_load_requested.connect(...)   # (path, load settings, Option): load it
    wizard.load_finished(ok, message)        # the window reports how loading went
    wizard.sig_start_chat.connect(...)       # (ask the sample question?, question)

Detection and ranking run on a worker thread, the download on another; the engine load is
the main window's (through its engine bridge). The wizard never blocks the GUI thread.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.core import model_choice
from app.ui.safe_text import plain
from app.ui.wizard.pages import DownloadPage, MachinePage, Page, PickPage, ReadyPage
from app.ui.wizard.style import stylesheet
from app.ui.wizard.tasks import Task

STEPS = ("1  Your machine", "2  Pick a model", "3  Download", "4  Ready")


def survey(env: model_choice.ChoiceEnv) -> dict[str, Any]:
    """Detect (unless given) and rank: everything the first two pages show. Worker thread."""
    profile = env.profile or model_choice.detect()
    settings = env.download
    return {
        "profile": profile,
        "facts": model_choice.describe_machine(profile, settings.models_folder()),
        "summary": model_choice.machine_summary(profile),
        "warnings": model_choice.machine_warnings(profile),
        "recommendation": model_choice.recommend(profile, env.catalog_path, env.stats),
    }


class ModelWizard(QDialog):
    sig_load_requested = Signal(str, object, object)  # path, load settings, Option
    sig_start_chat = Signal(bool, str)  # ask the sample question, the question
    sig_connect_server = Signal()
    sig_surveyed = Signal()  # detection and ranking are shown

    def __init__(self, env: model_choice.ChoiceEnv | None = None,
                 parent: QWidget | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.env = env or model_choice.ChoiceEnv()
        self.setWindowTitle("Ponder — model wizard")
        self.setObjectName("WizardRoot")
        self.setStyleSheet(stylesheet())
        self.resize(1040, 720)
        root = QVBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        root.setSpacing(0)

        bar = QFrame(self)
        bar.setObjectName("StepBar")
        steps = QHBoxLayout(bar)
        steps.setContentsMargins(24, 0, 24, 0)
        self.step_labels: list[QLabel] = []
        for text in STEPS:
            s = QLabel(text, bar)
            s.setObjectName("Step")
            steps.addWidget(s)
            self.step_labels.append(s)
            if text != STEPS[-1]:
                arrow = QLabel("›", bar)
                arrow.setObjectName("Step")
                steps.addWidget(arrow)
        steps.addStretch(1)
        self.machine_tag = plain(QLabel(self.env.machine_label, bar))
        self.machine_tag.setObjectName("Step")
        steps.addWidget(self.machine_tag)
        root.addWidget(bar)

        self.machine = MachinePage()
        self.pick = PickPage()
        self.download = DownloadPage(self.env.download)
        self.ready = ReadyPage()
        self.stack = QStackedWidget(self)
        for page in (self.machine, self.pick, self.download, self.ready):
            self.stack.addWidget(page)
        root.addWidget(self.stack, 1)

        nav = QFrame(self)
        nav.setObjectName("NavBar")
        row = QHBoxLayout(nav)
        row.setContentsMargins(24, 10, 24, 12)
        self.close_button = QPushButton("Close", nav)
        self.back_button = QPushButton("Back", nav)
        self.next_button = QPushButton("Next", nav)
        self.next_button.setObjectName("Primary")
        self.next_button.setDefault(True)
        row.addWidget(self.close_button)
        row.addStretch(1)
        row.addWidget(self.back_button)
        row.addWidget(self.next_button)
        root.addWidget(nav)

        self.close_button.clicked.connect(self.reject)
        self.back_button.clicked.connect(self.back)
        self.next_button.clicked.connect(self.next)
        self.pick.sig_selection.connect(lambda _o: self._update_nav())
        self.pick.sig_connect_server.connect(self.connect_server)
        self.download.sig_finished.connect(self._on_downloaded)
        self.download.sig_choose_other.connect(lambda: self.go(1))
        self.download.pause_button.clicked.connect(self._update_nav)
        self.task: Task | None = None
        self.profile: Any = None
        self.recommendation: model_choice.Recommendation | None = None
        self.load_option: model_choice.Option | None = None
        self.load_path: str | None = None
        self.go(0)

    # -- steps ---------------------------------------------------------------------------
    @property
    def page(self) -> Page:
        return self.stack.currentWidget()  # type: ignore[return-value]

    def start(self) -> None:
        """Detect the machine and rank the options (on a worker thread)."""
        self.task = Task(lambda: survey(self.env), self)
        self.task.sig_result.connect(self._on_survey)
        self.task.sig_error.connect(lambda exc, _tb: self.machine.show_error(str(exc)))
        self.task.start()

    def _on_survey(self, data: dict[str, Any]) -> None:
        self.profile = data["profile"]
        self.recommendation = data["recommendation"]
        self.machine.show_profile(self.profile, data["facts"], data["summary"], data["warnings"])
        self.pick.set_recommendation(self.recommendation, self.profile)
        self._update_nav()
        self.sig_surveyed.emit()

    def go(self, index: int) -> None:
        if self.stack.currentIndex() == 2 and index < 2:
            self.download.stop_job()
        self.stack.setCurrentIndex(index)
        if index == 2 and self.pick.selected is not None:
            self.download.set_option(self.pick.selected)
        if index == 3:
            self._request_load()
        self._update_nav()

    def next(self) -> None:
        i = self.stack.currentIndex()
        if not self.page.can_go_next():
            return
        if i == 3:
            self.sig_start_chat.emit(self.ready.sample.isChecked(), model_choice.SAMPLE_QUESTION)
            self.accept()
            return
        self.go(i + 1)

    def back(self) -> None:
        i = self.stack.currentIndex()
        if i > 0:
            self.go(i - 1 if i != 3 else 1)

    def _update_nav(self) -> None:
        i = self.stack.currentIndex()
        for n, s in enumerate(self.step_labels):
            s.setProperty("current", n == i)
            s.setProperty("done", n < i)
            s.style().unpolish(s)
            s.style().polish(s)
        self.back_button.setVisible(i > 0)
        text = self.page.next_text
        if i == 1 and self.pick.selected is not None:
            o = self.pick.selected
            from app.core.downloads import human_size

            text = (f"Download {human_size(o.download_bytes)}" if o.runs_here
                    else "Not available here")  # fmt: skip
        self.next_button.setText(text)
        self.next_button.setEnabled(self.page.can_go_next())
        self.next_button.setVisible(i != 2 or self.download.state == "done")

    # -- download and load ---------------------------------------------------------------
    def _on_downloaded(self, result: Any) -> None:
        self.load_option = self.download.option
        self.load_path = str(result.main_path)
        self.go(3)

    def _request_load(self) -> None:
        option = self.load_option
        if option is None or self.load_path is None:
            return
        settings = option.load_settings()
        self.ready.loading(option.name, settings)
        self.sig_load_requested.emit(self.load_path, settings, option)

    def load_finished(self, ok: bool, message: str = "") -> None:
        """The window tells the wizard whether the model loaded."""
        name = self.load_option.name if self.load_option else "The model"
        self.ready.done(ok, name, message)
        self._update_nav()

    def connect_server(self) -> None:
        """Open the 'Connect to a server' dialog when that part of Ponder is installed."""
        self.sig_connect_server.emit()

    # -- closing -------------------------------------------------------------------------
    def done(self, result: int) -> None:  # noqa: D102 - QDialog.done: stop the download first
        self.download.stop_job()
        if self.task is not None and self.task.isRunning():
            self.task.wait(5000)
        super().done(result)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.download.stop_job()
        super().closeEvent(event)

    def keyPressEvent(self, event: Any) -> None:  # noqa: N802 - Enter must not skip a step
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            return
        super().keyPressEvent(event)
