"""Generation settings for a conversation, each knob explained in one line; plus the
engine's threads (for every model, used from the next load on)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.generation_settings import KNOB_BY_NAME, GenerationSettings, Preset
from app.core.session_state import physical_cores
from app.ui.safe_text import esc, plain


class SettingsDialog(QDialog):
    def __init__(self, settings: GenerationSettings, preset: Preset, parent=None,
                 threads: int = 0) -> None:  # fmt: skip
        super().__init__(parent)
        self.setWindowTitle("Generation settings")
        self.setMinimumWidth(460)
        self.preset = preset
        layout = QVBoxLayout(self)
        head = QLabel(f"<b>{esc(preset.family)}</b> — {esc(preset.note)}", self)
        head.setTextFormat(Qt.TextFormat.RichText)
        head.setWordWrap(True)
        layout.addWidget(head)
        form = QFormLayout()
        form.setVerticalSpacing(4)
        layout.addLayout(form)
        self.temperature = self._double("temperature", 2)
        self.top_p = self._double("top_p", 2)
        self.max_tokens = self._int("max_tokens")
        self.max_tokens.setSpecialValueText("Rest of the context")
        self.answer_reserve = self._int("answer_reserve")
        self.thinking_budget = self._int("thinking_budget")
        self.thinking_budget.setSpecialValueText("Off")
        self.system_prompt = QPlainTextEdit(self)
        self.system_prompt.setFixedHeight(70)
        for name, w in (
            ("temperature", self.temperature),
            ("top_p", self.top_p),
            ("max_tokens", self.max_tokens),
            ("answer_reserve", self.answer_reserve),
            ("thinking_budget", self.thinking_budget),
            ("system_prompt", self.system_prompt),
        ):
            knob = KNOB_BY_NAME[name]
            box = QWidget(self)
            v = QVBoxLayout(box)
            v.setContentsMargins(0, 0, 0, 6)
            v.setSpacing(1)
            v.addWidget(w)
            text = knob.explanation
            if name == "system_prompt" and not preset.system_prompt_supported:
                text = "This model works best without one: it is added to your first message."
            note = plain(QLabel(text, box))
            note.setObjectName("Hint")
            note.setWordWrap(True)
            v.addWidget(note)
            form.addRow(knob.label, box)
        self._build_threads(form, threads)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        reset = QPushButton("Model defaults", self)
        reset.clicked.connect(lambda: self.set_settings(preset.settings))
        buttons.addButton(reset, QDialogButtonBox.ButtonRole.ResetRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.set_settings(settings)

    def _build_threads(self, form: QFormLayout, threads: int) -> None:
        """Threads: automatic (one per physical core) or a number, for every model."""
        cores = physical_cores()
        self.threads_box = QSpinBox(self)
        self.threads_box.setRange(0, max(64, cores * 2))
        self.threads_box.setSpecialValueText(f"Automatic ({cores}, one per physical core)")
        self.threads_box.setValue(threads)
        box = QWidget(self)
        v = QVBoxLayout(box)
        v.setContentsMargins(0, 0, 0, 6)
        v.setSpacing(1)
        v.addWidget(self.threads_box)
        note = plain(QLabel("Processor threads the engine uses, for every model, from the next "
                            "load. Fewer is often faster on a busy machine.", box))  # fmt: skip
        note.setObjectName("Hint")
        note.setWordWrap(True)
        v.addWidget(note)
        form.addRow("Threads", box)

    def threads(self) -> int:
        """The chosen thread count; 0 means automatic."""
        return self.threads_box.value()

    def _double(self, name: str, decimals: int) -> QDoubleSpinBox:
        knob = KNOB_BY_NAME[name]
        w = QDoubleSpinBox(self)
        w.setRange(knob.minimum, knob.maximum)
        w.setSingleStep(knob.step)
        w.setDecimals(decimals)
        return w

    def _int(self, name: str) -> QSpinBox:
        knob = KNOB_BY_NAME[name]
        w = QSpinBox(self)
        w.setRange(int(knob.minimum), int(knob.maximum))
        w.setSingleStep(int(knob.step))
        w.setGroupSeparatorShown(True)
        return w

    def set_settings(self, s: GenerationSettings) -> None:
        self.temperature.setValue(s.temperature)
        self.top_p.setValue(s.top_p)
        self.max_tokens.setValue(s.max_tokens or 0)
        self.answer_reserve.setValue(s.answer_reserve)
        self.thinking_budget.setValue(s.thinking_budget or 0)
        self.system_prompt.setPlainText(s.system_prompt)

    def settings(self) -> GenerationSettings:
        return GenerationSettings(
            temperature=round(self.temperature.value(), 2),
            top_p=round(self.top_p.value(), 2),
            max_tokens=self.max_tokens.value() or None,
            answer_reserve=self.answer_reserve.value(),
            thinking_budget=self.thinking_budget.value() or None,
            system_prompt=self.system_prompt.toPlainText().strip(),
        )
