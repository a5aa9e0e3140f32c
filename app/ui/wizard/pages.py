"""The four wizard pages: Your machine, Pick a model, Download, Ready.

Each page is a plain widget the `ModelWizard` stacks; pages never block: detection and
downloads run on worker threads (`tasks.py`), loading goes through the main window's
engine bridge. Words are written for someone who has never heard of a quant.

Labels show their text literally (model names, Hub file names, server and error messages are
untrusted); the few made rich for a bold heading escape every part they did not write.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core import model_choice
from app.core.downloads import (
    DiskFullError,
    DownloadControl,
    DownloadError,
    FileDone,
    FileStarted,
    OfflineError,
    PlanFinished,
    PlanStarted,
    Progress,
    Retrying,
    TokenRequiredError,
    Verifying,
    human_size,
)
from app.core.planner.words import duration_words
from app.ui.safe_text import esc, tip
from app.ui.wizard.style import list_table, tier_background, tier_foreground
from app.ui.wizard.tasks import DownloadJob

TOKEN_URL = "https://huggingface.co/settings/tokens"


def label(text: str = "", name: str = "", parent: QWidget | None = None,
          wrap: bool = True, rich: bool = False) -> QLabel:  # fmt: skip
    """A label showing `text` literally; `rich` ones take markup (escape what goes in)."""
    w = QLabel(parent)
    w.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
    w.setText(text)
    if name:
        w.setObjectName(name)
    w.setWordWrap(wrap)
    w.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return w


def card(name: str = "Card") -> tuple[QFrame, QVBoxLayout]:
    frame = QFrame()
    frame.setObjectName(name)
    layout = QVBoxLayout(frame)
    layout.setContentsMargins(18, 14, 18, 14)
    layout.setSpacing(6)
    return frame, layout


class Page(QWidget):
    """A wizard page: a title, a lead sentence and a body."""

    title = ""
    next_text = "Next"

    def __init__(self, lead: str = "") -> None:
        super().__init__()
        self.box = QVBoxLayout(self)
        self.box.setContentsMargins(32, 22, 32, 12)
        self.box.setSpacing(12)
        self.title_label = label(self.title, "PageTitle")
        self.lead = label(lead, "PageLead")
        self.box.addWidget(self.title_label)
        self.box.addWidget(self.lead)
        self.lead.setVisible(bool(lead))

    def can_go_next(self) -> bool:
        return True


# -- 1. Your machine -----------------------------------------------------------------------
class MachinePage(Page):
    title = "Your machine"
    next_text = "See the recommendation"

    def __init__(self) -> None:
        super().__init__("Ponder looked at this computer to find models that fit it.")
        self.status = label("Looking at this computer…", "Big")
        self.box.addWidget(self.status)
        self.facts_frame, facts_layout = card()
        self.grid = QGridLayout()
        self.grid.setHorizontalSpacing(18)
        self.grid.setVerticalSpacing(8)
        facts_layout.addLayout(self.grid)
        self.facts_frame.hide()
        self.box.addWidget(self.facts_frame)
        self.warnings = label("", "Warning", rich=True)
        self.warnings.hide()
        self.box.addWidget(self.warnings)
        self.box.addStretch(1)
        self.profile: Any = None

    def show_profile(self, profile: Any, facts: list[model_choice.Fact], summary: str,
                     warnings: list[str]) -> None:  # fmt: skip
        self.profile = profile
        self.status.setText(summary)
        while self.grid.count():
            item = self.grid.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        for row, fact in enumerate(facts):
            name = label(fact.label, "FactLabel", wrap=False)
            self.grid.addWidget(name, row, 0, Qt.AlignmentFlag.AlignTop)
            cell = QVBoxLayout()
            cell.setSpacing(1)
            cell.addWidget(label(fact.value, "FactValue"))
            if fact.note:
                cell.addWidget(label(fact.note, "FactNote"))
            self.grid.addLayout(cell, row, 1)
        self.grid.setColumnStretch(1, 1)
        self.facts_frame.show()
        if warnings:
            self.warnings.setText("<b>Worth knowing</b><br>" + "<br>".join(map(esc, warnings)))
            self.warnings.show()
        else:
            self.warnings.hide()

    def show_error(self, message: str) -> None:
        self.status.setText(
            f"Ponder could not read this computer's hardware ({message}). You can still pick "
            "a model; the estimates will be rough."
        )

    def can_go_next(self) -> bool:
        return self.profile is not None


# -- 2. Pick a model -----------------------------------------------------------------------
COLUMNS = ("Model", "Quality", "Download", "Memory", "Runs on", "Speed", "Typical answer")
FILTERS = (
    ("All options", lambda o: True),
    ("Runs on this computer", lambda o: o.runs_here),
    ("Runs well (answers within minutes)", lambda o: o.usable),
    ("Needs a server", lambda o: o.mode == "server"),
)


class PickPage(Page):
    title = "Pick a model"
    sig_selection = Signal(object)  # Option, or None when the filter hid it
    sig_connect_server = Signal()

    def __init__(self) -> None:
        super().__init__("")
        self.lead.hide()
        self.rec_frame, rec = card("RecCard")
        self.rec_label = label("RECOMMENDED FOR THIS COMPUTER", "RecLabel")
        self.rec_title = label("", "RecTitle")
        self.rec_where = label("", "RecLine")
        self.rec_time = label("", "RecLine")
        self.rec_size = label("", "RecLine")
        self.rec_why = label("", "Muted")
        for w in (self.rec_label, self.rec_title, self.rec_where, self.rec_time, self.rec_size,
                  self.rec_why):  # fmt: skip
            rec.addWidget(w)
        self.box.addWidget(self.rec_frame)

        row = QHBoxLayout()
        row.addWidget(label("<b>All options</b>", wrap=False, rich=True))
        row.addStretch(1)
        self.compare = label("What do the quality levels mean?", "Muted", wrap=False)
        self.compare.setToolTip(model_choice.compare_tooltip())  # Ponder's own markup
        self.compare.setCursor(Qt.CursorShape.PointingHandCursor)
        self.compare.mousePressEvent = lambda _e: self.explain_quality()  # type: ignore[method-assign]
        row.addWidget(self.compare)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter by name…")
        self.search.setClearButtonEnabled(True)
        self.search.setMaximumWidth(200)
        row.addWidget(self.search)
        self.filter = QComboBox()
        for name, _ in FILTERS:
            self.filter.addItem(name)
        row.addWidget(self.filter)
        self.box.addLayout(row)

        self.table = list_table(COLUMNS)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setDefaultSectionSize(26)
        self.box.addWidget(self.table, 1)

        self.detail_frame, detail = card()
        self.detail = label("", "Big", rich=True)
        detail.addWidget(self.detail)
        self.server_row = QHBoxLayout()
        self.commands_button = QPushButton("How to run it on a server…")
        self.commands_button.clicked.connect(self.show_server_commands)
        self.server_row.addWidget(self.commands_button)
        self.connect_button = QPushButton("Connect to a server…")
        self.connect_button.clicked.connect(self.sig_connect_server.emit)
        self.server_row.addWidget(self.connect_button)
        self.server_row.addStretch(1)
        detail.addLayout(self.server_row)
        self.box.addWidget(self.detail_frame)

        self.recommendation: model_choice.Recommendation | None = None
        self.shown: list[model_choice.Option] = []
        self.selected: model_choice.Option | None = None
        self.profile: Any = None
        self.search.textChanged.connect(self._refill)
        self.filter.currentIndexChanged.connect(self._refill)
        self.table.itemSelectionChanged.connect(self._on_select)

    def set_recommendation(self, rec: model_choice.Recommendation, profile: Any) -> None:
        self.recommendation, self.profile = rec, profile
        top = rec.recommended
        if top is None:
            self.rec_label.setText("NOTHING RUNS WELL ON THIS COMPUTER")
            self.rec_title.setText("Use a server, or pick a small model below")
            self.rec_where.setText(rec.reason)
            for w in (self.rec_time, self.rec_size, self.rec_why):
                w.hide()
        else:
            self.rec_title.setText(top.name)
            self.rec_where.setText("✓  " + top.where_words(profile) + ".")
            speed = ""
            if top.decode_tps:
                speed = f" — it writes about {top.decode_tps:.0f} tokens (word pieces) a second"
            self.rec_time.setText(f"✓  A typical answer takes {top.answer_words}{speed}.")
            self.rec_size.setText(
                f"✓  {human_size(top.download_bytes)} download, compressed to "
                f"{top.quant_label}: {top.quality_note}."
            )
            self.rec_why.setText(rec.reason)
        self._refill()
        if top is not None:
            self.select(top)

    def _refill(self) -> None:
        if self.recommendation is None:
            return
        _, keep = FILTERS[self.filter.currentIndex()]
        text = self.search.text().strip().lower()
        self.shown = [
            o
            for o in self.recommendation.options
            if keep(o) and (not text or text in f"{o.name} {o.quant}".lower())
        ]
        previous = self.selected
        self.table.blockSignals(True)
        self.table.setRowCount(len(self.shown))
        for row, o in enumerate(self.shown):
            name = o.name + ("  ★ recommended" if o.recommended else "")
            cells = (
                name,
                o.quant_label,
                human_size(o.download_bytes),
                human_size(o.memory_bytes),
                o.mode_label,
                o.speed_words,
                o.answer_words,
            )
            for col, text_ in enumerate(cells):
                item = QTableWidgetItem(text_)
                item.setBackground(tier_background(o.tier))
                if col == 4:
                    item.setForeground(tier_foreground(o.tier))
                    item.setToolTip(tip(model_choice.MODE_HINTS.get(o.mode, "")))
                elif col == 1:
                    item.setToolTip(tip(f"{o.quant_label}: {o.quality_note}"))
                else:
                    item.setToolTip(tip(o.reason))
                if o.recommended:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(row, col, item)
        self.table.blockSignals(False)
        if previous is not None and previous in self.shown:
            self.select(previous)
        else:
            self.table.clearSelection()
            self._clear_detail()

    def _clear_detail(self) -> None:
        """The filter hid the option described below: describe nothing, choose nothing."""
        if self.selected is None:
            return
        self.selected = None
        self.detail.setText("Choose a model in the list to see how it would run here.")
        self.connect_button.hide()
        self.commands_button.hide()
        self.sig_selection.emit(None)

    def select(self, option: model_choice.Option) -> None:
        if option in self.shown:
            row = self.shown.index(option)
            self.table.selectRow(row)
            item = self.table.item(row, 0)
            if item is not None:
                self.table.scrollToItem(item)
        self._show_detail(option)

    def select_key(self, model_id: str, quant: str) -> model_choice.Option | None:
        """Select an option by catalog id and quant (tests and the model manager use it)."""
        if self.recommendation is None:
            return None
        option = self.recommendation.find(model_id, quant)
        if option is not None:
            self.filter.setCurrentIndex(0)
            self.search.clear()
            self.select(option)
        return option

    def _on_select(self) -> None:
        rows = {i.row() for i in self.table.selectedItems()}
        if rows:
            self._show_detail(self.shown[min(rows)])

    def _show_detail(self, o: model_choice.Option) -> None:
        self.selected = o
        server = o.mode == "server"
        if server:
            text = "<b>This one needs a server.</b> " + esc(o.server_words())
        elif o.mode == "no":
            text = f"<b>{esc(o.name)} {esc(o.quant)} cannot run here.</b> {esc(o.reason)}"
        else:
            text = (
                f"<b>{esc(o.name)}</b> at {esc(o.quant_label)}: "
                f"{esc(o.where_words(self.profile))}. A typical answer takes "
                f"{esc(o.answer_words)}. {esc(o.quality_note.capitalize())}."
            )
            if o.measured is not None:
                text += f" Measured here: {o.measured.decode_tps:.0f} tokens/s."
        self.detail.setText(text)
        self.connect_button.setVisible(server)
        self.commands_button.setVisible(server)
        self.sig_selection.emit(o)

    def explain_quality(self) -> Any:
        """A click on "What do the quality levels mean?": the explanation in a box (it was
        only a tooltip, so a click did nothing)."""
        box = QMessageBox(QMessageBox.Icon.Information, "Quality levels", "",
                          QMessageBox.StandardButton.Ok, self)  # fmt: skip
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(model_choice.compare_tooltip())  # Ponder's own markup
        box.open()
        self.quality_box = box
        return box

    def show_server_commands(self) -> Any:
        """The vLLM / SGLang / llama-server commands for the selected option (a dialog)."""
        from app.ui.server_commands_dialog import ServerCommandsDialog

        if self.selected is None:
            return None
        dialog = ServerCommandsDialog(model_choice.serve_plan(self.selected), self)
        dialog.sig_connect.connect(self.sig_connect_server.emit)
        dialog.open()
        self.commands_dialog = dialog
        return dialog

    def can_go_next(self) -> bool:
        return self.selected is not None and self.selected.runs_here


# -- 3. Download ---------------------------------------------------------------------------
class DownloadPage(Page):
    title = "Download"
    next_text = "Continue"
    sig_finished = Signal(object)  # DownloadResult (complete)
    sig_choose_other = Signal()

    def __init__(self, settings: model_choice.DownloadSettings) -> None:
        super().__init__("")
        self.settings = settings
        self.what = label("", "Big")
        self.box.addWidget(self.what)
        self.files = label("", "Muted")
        self.box.addWidget(self.files)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.box.addWidget(self.bar)
        self.progress = label("", "Big")
        self.box.addWidget(self.progress)
        buttons = QHBoxLayout()
        self.pause_button = QPushButton("Pause")
        self.cancel_button = QPushButton("Cancel download")
        self.retry_button = QPushButton("Try again")
        self.retry_button.setObjectName("Primary")
        self.other_button = QPushButton("Choose another model")
        for b in (self.pause_button, self.cancel_button, self.retry_button, self.other_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.box.addLayout(buttons)

        self.error_frame, err = card("ErrorBox")
        self.error = label("", "Big", rich=True)
        err.addWidget(self.error)
        self.token_row = QWidget()
        tr = QHBoxLayout(self.token_row)
        tr.setContentsMargins(0, 4, 0, 0)
        self.token_edit = QLineEdit()
        self.token_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_edit.setPlaceholderText("hf_…  (your Hugging Face access token)")
        self.token_button = QPushButton("Save token and try again")
        self.token_button.setObjectName("Primary")
        tr.addWidget(self.token_edit, 1)
        tr.addWidget(self.token_button)
        err.addWidget(self.token_row)
        self.token_help = label(
            f'Make a token (read access is enough) at <a href="{TOKEN_URL}">{TOKEN_URL}</a>. '
            "Ponder keeps it in your system's password store, never in a file.",
            "Muted",
            rich=True,
        )
        self.token_help.setOpenExternalLinks(True)
        self.token_help.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        err.addWidget(self.token_help)
        self.box.addWidget(self.error_frame)
        self.box.addStretch(1)

        self.pause_button.clicked.connect(self.toggle_pause)
        self.cancel_button.clicked.connect(self.cancel)
        self.retry_button.clicked.connect(self.start)
        self.other_button.clicked.connect(self.sig_choose_other.emit)
        self.token_button.clicked.connect(self.save_token)
        self.token_edit.returnPressed.connect(self.save_token)

        self.option: model_choice.Option | None = None
        self.plan: Any = None
        self.job: DownloadJob | None = None
        self.control = DownloadControl()
        self.result: Any = None
        self.state = "idle"  # idle, running, pausing, paused, cancelling, cancelled, failed, done
        self.last_error: DownloadError | None = None
        self._set_state("idle")

    # -- driving -------------------------------------------------------------------------
    def set_option(self, option: model_choice.Option) -> None:
        if (
            self.option is not None
            and option.key == self.option.key
            and self.state in ("running", "paused", "done")
        ):
            return
        self.stop_job()
        self.option, self.plan, self.result = option, None, None
        self.title_label.setText(f"Download {option.name}")
        self.what.setText(
            f"{option.name} at {option.quant_label} — {human_size(option.download_bytes)} from "
            f"Hugging Face ({option.repo}). It goes into the shared Hugging Face cache, so "
            "other apps can use it too."
        )
        self.files.setText("")
        self.bar.setValue(0)
        self.progress.setText("")
        self.start()

    def start(self) -> None:
        """Plan (first time) and download; resumes from what is on disk."""
        if self.option is None or self.state in ("running", "pausing", "cancelling"):
            return
        self.control.reset()
        self.last_error = None
        self.job = DownloadJob(self.option, self.settings, self.control, self.plan, self)
        self.job.sig_planned.connect(self._on_planned)
        self.job.sig_event.connect(self._on_event)
        self.job.sig_done.connect(self._on_done)
        self.job.sig_failed.connect(self._on_failed)
        self._set_state("running")
        self.progress.setText("Asking Hugging Face for the files…" if self.plan is None
                              else "Resuming…")  # fmt: skip
        self.job.start()

    def toggle_pause(self) -> None:
        if self.state == "running":
            self.control.pause()
            self._set_state("pausing")
            self.progress.setText("Pausing after the current chunk…")
        elif self.state == "paused":
            self.start()

    def cancel(self) -> None:
        if self.state in ("running", "pausing") and self.plan is None and self.job is not None:
            # Still asking the Hub: nothing is on disk yet, so Cancel ends it now. The
            # asking thread stops at its next step on its own; what it says is dropped.
            self.control.cancel(delete_partial=True)
            for sig in (self.job.sig_planned, self.job.sig_event, self.job.sig_done,
                        self.job.sig_failed):  # fmt: skip
                sig.disconnect()
            self.job, self.control = None, DownloadControl()
            self._cancelled()
        elif self.state in ("running", "pausing"):
            self.control.cancel(delete_partial=True)
            self._set_state("cancelling")
            self.progress.setText("Cancelling…")
        elif self.state == "paused" and self.plan is not None:
            model_choice.discard_partial(self.plan, self.settings)
            self._cancelled()

    def stop_job(self, wait_ms: int = 10_000) -> None:
        """Stop a running download (keeping partial data) and wait for its thread."""
        if self.job is not None and self.job.isRunning():
            self.control.pause()
            self.job.wait(wait_ms)
        self.job = None
        if self.state in ("running", "pausing", "cancelling"):
            self._set_state("paused" if self.plan is not None else "idle")

    def save_token(self) -> None:
        token = self.token_edit.text().strip()
        if not token:
            self.token_edit.setFocus()
            return
        from app.core.secrets import TokenStoreError

        try:
            model_choice.save_token(token)
        except TokenStoreError as exc:
            self.error.setText(esc(exc.message))
            return
        self.token_edit.clear()
        self.start()

    # -- events --------------------------------------------------------------------------
    def _on_planned(self, plan: Any, free: int, left: int) -> None:
        self.plan = plan
        names = ", ".join(f.path for f in plan.files)
        after = free - left
        self.files.setText(
            f"Files: {names}\nTotal {human_size(plan.total_bytes)}; "
            + (f"{human_size(left)} still to fetch; " if left != plan.total_bytes else "")
            + f"free disk space after the download: {human_size(max(0, after))}."
        )

    def _on_event(self, e: Any) -> None:
        if isinstance(e, PlanStarted):
            self._bar(e.done, e.total)
        elif isinstance(e, Progress):
            self._bar(e.done, e.total)
            if self.state == "running":
                speed = f" · {human_size(e.speed)}/s" if e.speed else ""
                eta = f" · {duration_words(e.eta_s).replace('about ', 'about ')} left" if (
                    e.eta_s is not None) else ""  # fmt: skip
                self.progress.setText(f"{human_size(e.done)} of {human_size(e.total)}{speed}{eta}")
        elif isinstance(e, FileStarted) and self.state == "running":
            more = f" (continuing from {human_size(e.resumed_from)})" if e.resumed_from else ""
            self.progress.setText(f"Downloading {e.path}{more}…")
        elif isinstance(e, Verifying):
            self.progress.setText(f"Checking {e.path}: {human_size(e.done)} of "
                                  f"{human_size(e.total)} verified…")  # fmt: skip
        elif isinstance(e, Retrying):
            self.progress.setText(f"The connection hiccuped ({e.reason}); trying again…")
        elif isinstance(e, FileDone):
            self.progress.setText(f"{e.path} is complete and verified.")
        elif isinstance(e, PlanFinished):
            self._bar(e.done, e.total)

    def _bar(self, done: int, total: int) -> None:
        self.bar.setValue(int(1000 * done / total) if total else 0)

    def _on_done(self, result: Any) -> None:
        self.job = None
        if result.status == "complete":
            self.result = result
            self._set_state("done")
            self.bar.setValue(1000)
            self.progress.setText(
                f"Downloaded and verified: {human_size(result.plan.total_bytes)}. "
                "Every file's checksum matches Hugging Face's."
            )
            self.sig_finished.emit(result)
        elif result.status == "paused":
            self._set_state("paused")
            self.progress.setText(
                f"Paused at {self.bar.value() / 10:.0f}%. Resume continues where it stopped."
            )
        else:
            self._cancelled()

    def _cancelled(self) -> None:
        self._set_state("cancelled")
        self.bar.setValue(0)
        self.progress.setText("Cancelled; the partial download was deleted.")

    def _on_failed(self, error: DownloadError) -> None:
        self.job = None
        self.last_error = error
        self._set_state("failed")
        self.progress.setText("")
        text = esc(error.message)  # the server's words, shown literally
        if isinstance(error, OfflineError):
            text = (
                "<b>No connection to Hugging Face.</b> " + text + " Check the internet "
                "connection, then try again; models already downloaded still work."
            )
        elif isinstance(error, DiskFullError):
            text = ("<b>Not enough disk space.</b> " + text + " Free some space (the model "
                    "manager shows what each model takes), or choose a smaller model.")  # fmt: skip
        elif isinstance(error, TokenRequiredError):
            head = "This model is gated" if error.gated else "This model needs a token"
            text = f"<b>{head}.</b> {text}"
        else:
            text = "<b>The download stopped.</b> " + text
        self.error.setText(text)
        self.token_row.setVisible(isinstance(error, TokenRequiredError))
        self.token_help.setVisible(isinstance(error, TokenRequiredError))

    # -- state ---------------------------------------------------------------------------
    def _set_state(self, state: str) -> None:
        self.state = state
        active = state in ("running", "pausing", "paused")
        self.pause_button.setVisible(active)
        self.pause_button.setEnabled(state in ("running", "paused"))
        self.pause_button.setText("Resume" if state == "paused" else "Pause")
        self.cancel_button.setVisible(active)
        self.cancel_button.setEnabled(state in ("running", "paused", "pausing"))
        self.retry_button.setVisible(state in ("failed", "cancelled"))
        self.retry_button.setText("Start again" if state == "cancelled" else "Try again")
        self.other_button.setVisible(state in ("failed", "cancelled"))
        self.error_frame.setVisible(state == "failed")
        if state != "failed":
            self.token_row.hide()
            self.token_help.hide()

    def can_go_next(self) -> bool:
        return self.state == "done"


# -- 4. Ready ------------------------------------------------------------------------------
class ReadyPage(Page):
    title = "Ready"
    next_text = "Start chatting"

    def __init__(self) -> None:
        super().__init__("")
        self.status = label("", "Big", rich=True)
        self.box.addWidget(self.status)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)
        self.bar.setTextVisible(False)
        self.box.addWidget(self.bar)
        self.settings_label = label("", "Muted")
        self.box.addWidget(self.settings_label)
        self.sample = QCheckBox("Ask it a sample question to see it think:")
        self.sample.setChecked(True)
        self.box.addWidget(self.sample)
        self.question = label(f"“{model_choice.SAMPLE_QUESTION}”", "Muted")
        self.question.setContentsMargins(24, 0, 0, 0)
        self.box.addWidget(self.question)
        self.tip = label(
            "While it answers, its reasoning appears in the “Thinking” panel above the answer; "
            "click the panel to fold it away. The Model menu brings this wizard back, and "
            "“Models…” lists everything installed.",
            "Muted",
        )
        self.box.addWidget(self.tip)
        self.box.addStretch(1)
        self.loaded = False
        self.failed = False

    def loading(self, name: str, settings: dict[str, Any]) -> None:
        self.loaded = self.failed = False
        self.title_label.setText("Loading the model")
        self.status.setText(f"Loading {esc(name)}… (a few seconds; big models take longer)")
        self.bar.show()
        self.sample.hide()
        self.question.hide()
        self.tip.hide()
        ctx = settings.get("n_ctx")
        layers = settings.get("n_gpu_layers")
        where = ("all layers on the GPU" if layers == -1 else
                 "on the CPU" if not layers else f"{layers} layers on the GPU")  # fmt: skip
        threads = settings.get("n_threads")
        self.settings_label.setText(
            f"Settings from the plan: a {ctx:,}-token context, {where}"
            + (f", {threads} CPU threads" if threads else "")
            + "."
        )

    def done(self, ok: bool, name: str, message: str = "") -> None:
        self.bar.hide()
        self.loaded, self.failed = ok, not ok
        if ok:
            self.title_label.setText("Ready")
            self.status.setText(f"<b>{esc(name)}</b> is loaded and ready on this computer.")
            self.sample.show()
            self.question.show()
            self.tip.show()
        else:
            self.title_label.setText("The model did not load")
            self.status.setText(esc(message or "Loading failed; the main window shows why."))

    def can_go_next(self) -> bool:
        return self.loaded
