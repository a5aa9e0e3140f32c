"""Where the person writes: Enter sends, Shift+Enter adds a line, Esc stops.

Also the Stop / Answer now buttons while an answer streams, the model choice (the loaded
model, or Auto when a small and a big model are installed), the thinking budget, and the
button that opens the generation settings.
"""

from __future__ import annotations

from typing import cast

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
)

BUDGETS = [
    (None, "Thinking: no limit"),
    (512, "Thinking: 512 tokens"),
    (1024, "Thinking: 1k tokens"),
    (2048, "Thinking: 2k tokens"),
    (4096, "Thinking: 4k tokens"),
    (8192, "Thinking: 8k tokens"),
    (16384, "Thinking: 16k tokens"),
]


BUDGET_TIP = (
    "Cap on thinking tokens per answer: when reached, the model stops thinking and "
    "answers from what it has."
)
AUTO_LABEL = "Auto: small or big"
AUTO_SWITCH_LABEL = "Auto: think when needed"  # one model that can answer without thinking


class Composer(QFrame):
    sig_send = Signal(str)
    sig_stop = Signal()
    sig_answer_now = Signal()
    sig_budget_changed = Signal(object)  # int or None
    sig_open_settings = Signal()
    sig_auto_changed = Signal(bool)  # Auto routing on (small or big model per prompt) or off

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("Composer")
        self.busy = False
        self.can_steer = True  # Answer now / thinking budget (local engines only)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 10, 8)
        layout.setSpacing(4)
        self.input = QPlainTextEdit(self)
        self.input.setObjectName("ComposerInput")
        self.input.setPlaceholderText("Ask anything… (Enter to send, Shift+Enter for a new line)")
        self.input.setTabChangesFocus(True)
        self.input.installEventFilter(self)
        self.input.document().contentsChanged.connect(self._grow)
        layout.addWidget(self.input)
        row = QHBoxLayout()
        row.setSpacing(6)
        self.budget = QComboBox(self)
        self.budget.setToolTip(BUDGET_TIP)
        for value, label in BUDGETS:
            self.budget.addItem(label, value)
        self.budget.currentIndexChanged.connect(
            lambda i: self.sig_budget_changed.emit(self.budget.itemData(i))
        )
        self.model_choice = QComboBox(self)  # shown when a small and a big model are installed
        self.model_choice.addItem("Loaded model", False)
        self.model_choice.addItem(AUTO_LABEL, True)
        self.model_choice.currentIndexChanged.connect(
            lambda i: self.sig_auto_changed.emit(bool(self.model_choice.itemData(i)))
        )
        self.model_choice.hide()
        self.settings_button = QPushButton("Settings", self)
        self.settings_button.setToolTip("Temperature, top-p, length limit, system prompt")
        self.settings_button.clicked.connect(self.sig_open_settings)
        self.hint = QLabel("Esc stops", self)
        self.hint.setObjectName("Hint")
        self.answer_now_button = QPushButton("Answer now", self)
        self.answer_now_button.setToolTip("End the thinking here and let the model answer")
        self.answer_now_button.clicked.connect(self.sig_answer_now)
        self.send_button = QPushButton("Send", self)
        self.send_button.setObjectName("SendButton")
        self.send_button.clicked.connect(self.submit)
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setObjectName("StopButton")
        self.stop_button.clicked.connect(self.sig_stop)
        for w in (self.model_choice, self.budget, self.settings_button, self.hint):
            row.addWidget(w)
        row.addStretch(1)
        for w in (self.answer_now_button, self.stop_button, self.send_button):
            row.addWidget(w)
        layout.addLayout(row)
        self.set_busy(False)
        self._grow()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        if obj is self.input and event.type() == QEvent.Type.KeyPress:
            key_event = cast(QKeyEvent, event)  # PySide6 passes key presses as QKeyEvent
            key, mods = key_event.key(), key_event.modifiers()
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                if mods & Qt.KeyboardModifier.ShiftModifier:
                    self.input.insertPlainText("\n")
                else:
                    self.submit()
                return True
            if key == Qt.Key.Key_Escape:
                self.sig_stop.emit()
                return True
        return super().eventFilter(obj, event)

    def submit(self) -> None:
        text = self.input.toPlainText().strip()
        if text and not self.busy:
            self.sig_send.emit(text)

    def clear(self) -> None:
        self.input.clear()

    def set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.send_button.setVisible(not busy)
        self.stop_button.setVisible(busy)
        self.hint.setVisible(busy)
        if not busy:
            self.answer_now_button.hide()

    def set_thinking(self, thinking: bool) -> None:
        self.answer_now_button.setVisible(thinking and self.busy and self.can_steer)

    def set_can_steer(self, can: bool) -> None:
        """Answer now and the thinking budget need a local engine; on a server the server's
        own settings decide how long the model thinks."""
        self.can_steer = can
        self.budget.setEnabled(can)
        self.budget.setToolTip(
            BUDGET_TIP if can else "On a server, the server decides how long the model thinks"
        )
        if not can:
            self.answer_now_button.hide()

    def set_auto_available(self, description: str | None, switch: bool = False) -> None:
        """Offer Auto (with `description`: which models it uses; `switch`: its big model can
        answer without thinking, Qwen3), or hide it (None)."""
        self.model_choice.setItemText(1, AUTO_SWITCH_LABEL if switch else AUTO_LABEL)
        self.model_choice.setVisible(description is not None)
        self.model_choice.setToolTip(
            f"Auto routes each prompt: {description}" if description else ""
        )
        if description is None and self.model_choice.currentIndex() != 0:
            self.model_choice.setCurrentIndex(0)

    def set_budget(self, value: int | None) -> None:
        index = self.budget.findData(value)
        if index < 0:
            self.budget.addItem(f"Thinking: {value:,} tokens", value)
            index = self.budget.count() - 1
        self.budget.blockSignals(True)
        self.budget.setCurrentIndex(index)
        self.budget.blockSignals(False)

    def _grow(self) -> None:
        lines = max(1, min(8, self.input.document().lineCount()))
        height = lines * self.input.fontMetrics().lineSpacing() + 14
        self.input.setFixedHeight(max(height, 40))
