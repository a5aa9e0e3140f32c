"""Status bar pieces: the loaded model, and the context meter (prompt / thinking / answer
tokens against the context size)."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath
from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

from app.core.generation_settings import ContextUse
from app.ui import theme


class ContextMeter(QWidget):
    """A thin stacked bar plus "2,345 / 8,192 tokens"; the tooltip has the split."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.use = ContextUse(0)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 0)
        self.bar = _Bar(self)
        self.label = QLabel(self)
        layout.addWidget(self.bar)
        layout.addWidget(self.label)
        self.set_use(self.use)

    def set_use(self, use: ContextUse) -> None:
        self.use = use
        self.bar.use = use
        self.bar.update()
        if use.n_ctx:
            self.label.setText(f"Context {use.used:,} / {use.n_ctx:,}")
        else:
            self.label.setText("Context —")
        self.setToolTip(
            f"Prompt {use.prompt:,} · thinking {use.thinking:,} · answer {use.answer:,} tokens"
            f" of {use.n_ctx:,}.\nEarlier thinking is not sent back to the model."
        )


class _Bar(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.use = ContextUse(0)
        self.setFixedSize(QSize(110, 8))

    def paintEvent(self, _event) -> None:  # noqa: N802
        t = theme.current()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect())
        clip = QPainterPath()
        clip.addRoundedRect(rect, 4, 4)
        p.setClipPath(clip)
        p.fillRect(rect, QColor(t.border))
        n = max(self.use.n_ctx, 1)
        x = 0.0
        for value, colour in (
            (self.use.prompt, t.prompt_bar),
            (self.use.thinking, t.thinking_bar),
            (self.use.answer, t.answer_bar),
        ):
            w = rect.width() * min(value / n, 1.0 - x / rect.width())
            p.fillRect(QRectF(x, 0, w, rect.height()), QColor(colour))
            x += w
        if self.use.used > 0.9 * n and self.use.n_ctx:
            p.setPen(QColor("#d9534f"))
            p.drawRoundedRect(rect.adjusted(0.5, 0.5, -0.5, -0.5), 4, 4)
        p.end()


# why a load failed, by the engine's error kind, for the status bar (the chat has the details)
LOAD_FAILED_WHY = {
    "bad_model": "it could not be opened",
    "out_of_memory": "not enough memory",
    "engine_crashed": "the engine stopped while loading it",
    "engine_hung": "the engine stopped responding",
    "bad_request": "the engine refused the settings",
}


class ModelLabel(QLabel):
    """Model name · quant · engine, or what is happening to the model."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.set_none()

    def set_none(self) -> None:
        self.setText("No model loaded")

    def set_loading(self, name: str) -> None:
        self.setText(f"Loading {name}…")

    def set_failed(self, name: str, kind: str) -> None:
        """A load failed (the engine is fine): what happened and what to do."""
        why = LOAD_FAILED_WHY.get(kind, "the engine reported a problem")
        self.setText(f"{name} did not load: {why}. Try again, or choose another model.")

    def set_model(self, name: str, quant: str | None, engine: str | None) -> None:
        self.setText(" · ".join(x for x in (name, quant, engine) if x))
