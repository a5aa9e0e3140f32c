"""The results of a comparison: a per-model table with a plot of accuracy against time per
answer (QPainter, one point per model), and every problem's answers side by side with each
thinking expandable.

Model names and everything a model wrote are untrusted: shown only as plain text (table and
tree cells, a QPlainTextEdit, QPainter.drawText), never as rich text, so nothing they name is
ever loaded.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QPlainTextEdit,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.compare.report import MODEL_COLUMNS, model_cells, percent, seconds
from app.core.compare.summary import Summary

COLORS = ("#2f6fde", "#d9822b", "#2aa876", "#b04fc4")
TEXT_ROLE = Qt.ItemDataRole.UserRole + 1  # the full text of a tree cell (answer, thinking)


class AccuracyPlot(QWidget):
    """Accuracy (or agreement where nothing is expected) against median seconds per answer."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.points: list[tuple[str, float, float]] = []  # label, seconds, fraction
        self.y_name = "Accuracy"
        self.setMinimumHeight(260)

    def set_summary(self, summary: Summary | None) -> None:
        self.points = []
        if summary is not None:
            graded = any(m.accuracy is not None for m in summary.models)
            self.y_name = "Accuracy" if graded else f"Agreement with {summary.reference}"
            for m in summary.models:
                y = m.accuracy if graded else (1.0 if m.is_reference else m.agreement)
                if y is not None and m.median_seconds is not None:
                    self.points.append((m.model, m.median_seconds, y))
        self.update()

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        text = self.palette().windowText().color()
        faint = QColor(text)
        faint.setAlpha(60)
        legend = 18 * max(1, len(self.points)) + 6
        area = QRectF(self.rect()).adjusted(56, 14, -24, -40 - legend)
        p.setPen(QPen(faint, 1))
        for k in range(5):  # accuracy grid: 0, 25, … 100%
            y = area.bottom() - area.height() * k / 4
            p.drawLine(QPointF(area.left(), y), QPointF(area.right(), y))
            p.setPen(text)
            p.drawText(QRectF(0, y - 8, area.left() - 6, 16),
                       int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
                       f"{k * 25}%")  # fmt: skip
            p.setPen(QPen(faint, 1))
        p.setPen(text)
        p.drawText(QRectF(area.left(), area.bottom() + 20, area.width(), 18),
                   int(Qt.AlignmentFlag.AlignCenter),
                   f"{self.y_name} against median time per answer")  # fmt: skip
        if not self.points:
            p.drawText(area, int(Qt.AlignmentFlag.AlignCenter), "No answers yet.")
            return
        low = min(s for _, s, _ in self.points)
        high = max(s for _, s, _ in self.points)
        log_scale = high > 20 * max(low, 1e-3)
        scale = _scale(low, high, log_scale)
        for t in _ticks(low, high, log_scale):
            x = area.left() + area.width() * scale(t)
            p.drawText(QRectF(x - 40, area.bottom() + 2, 80, 16),
                       int(Qt.AlignmentFlag.AlignCenter), seconds(t))  # fmt: skip
        bold = QFont(self.font())
        bold.setBold(True)
        for i, (label, secs, frac) in enumerate(self.points):
            x = area.left() + area.width() * scale(secs)
            y = area.bottom() - area.height() * frac
            color = QColor(COLORS[i % len(COLORS)])
            p.setPen(QPen(color.darker(130), 1.5))
            p.setBrush(color)
            p.drawEllipse(QPointF(x, y), 7, 7)
            p.setFont(bold)
            p.drawText(QRectF(x + 10, y - 9, 60, 18),
                       int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                       percent(frac))  # fmt: skip
            # the legend under the axis: a dot and the model's name (plain text)
            ly = area.bottom() + 42 + 18 * i
            p.drawEllipse(QPointF(area.left() + 6, ly + 9), 5, 5)
            p.setFont(self.font())
            p.setPen(text)
            p.drawText(QRectF(area.left() + 18, ly, area.width() - 18, 18),
                       int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                       f"{label}: {percent(frac)} in {seconds(secs)} per answer")  # fmt: skip
        p.end()


def _scale(low: float, high: float, log_scale: bool) -> Callable[[float], float]:
    """x in [0, 1] for a number of seconds, with a margin on each side."""
    if log_scale:
        a, b = math.log10(max(low, 1e-3)), math.log10(high)
    else:
        a, b = 0.0, high
    span = (b - a) or 1.0

    def f(v: float) -> float:
        v = math.log10(max(v, 1e-3)) if log_scale else v
        return 0.08 + 0.84 * (v - a) / span

    return f


def _ticks(low: float, high: float, log_scale: bool) -> list[float]:
    if log_scale:
        return [10.0**e for e in range(math.floor(math.log10(max(low, 1e-3))),
                                       math.ceil(math.log10(high)) + 1)][:8]  # fmt: skip
    return [high * k / 4 for k in range(5)]


class CompareResults(QTabWidget):
    """Two tabs: Models (table and plot) and Problems (answers side by side)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary: Summary | None = None
        models = QWidget(self)
        v = QVBoxLayout(models)
        self.table = QTableWidget(0, len(MODEL_COLUMNS), models)
        self.table.setHorizontalHeaderLabels(list(MODEL_COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.plot = AccuracyPlot(models)
        v.addWidget(self.table, 2)
        v.addWidget(self.plot, 3)
        self.addTab(models, "Models")
        split = QSplitter(Qt.Orientation.Vertical, self)
        self.tree = QTreeWidget(split)
        self.tree.setUniformRowHeights(True)
        self.tree.setWordWrap(False)
        self.detail = QPlainTextEdit(split)
        self.detail.setReadOnly(True)
        self.detail.setPlaceholderText("Click an answer or a thinking to read all of it.")
        split.setSizes([400, 160])
        self.tree.currentItemChanged.connect(self._show_detail)
        self.tree.itemClicked.connect(lambda item, col: self._show_cell(item, col))
        self.addTab(split, "Problems")

    def set_summary(self, summary: Summary | None) -> None:
        self.summary = summary
        self.plot.set_summary(summary)
        self.table.setRowCount(0)
        self.tree.clear()
        if summary is None:
            return
        self.table.setRowCount(len(summary.models))
        for i, m in enumerate(summary.models):
            for c, text in enumerate(model_cells(m, summary.reference)):
                self.table.setItem(i, c, QTableWidgetItem(text))
        labels = [m.model for m in summary.models]
        self.tree.setColumnCount(2 + len(labels))
        self.tree.setHeaderLabels(["Problem", "Expected", *labels])
        for row in summary.problems:
            top = QTreeWidgetItem([f"{row.index + 1}. {_line(row.prompt)}", row.expected or "—"])
            top.setData(0, TEXT_ROLE, row.prompt)
            top.setToolTip(0, "")  # full text in the pane below, never as a rich tooltip
            repeats = max((len(a) for a in row.attempts.values()), default=0)
            for c, label in enumerate(labels, start=2):
                attempts = row.attempts.get(label, [])
                top.setText(c, "  ".join(_final(r) for r in attempts) or "…")
            for k in range(repeats):
                answer = QTreeWidgetItem([f"Answer {k + 1}", ""])
                thinking = QTreeWidgetItem([f"Thinking {k + 1}", ""])
                for c, label in enumerate(labels, start=2):
                    attempts = row.attempts.get(label, [])
                    if k < len(attempts):
                        r = attempts[k]
                        answer.setText(c, _line(r.error or r.answer) or "(no answer)")
                        answer.setData(c, TEXT_ROLE, r.error or r.answer)
                        thinking.setText(c, f"{r.thinking_tokens:,} tokens · {seconds(r.elapsed_s)}"
                                         f" — {_line(r.thinking)}")  # fmt: skip
                        thinking.setData(c, TEXT_ROLE, r.thinking)
                answer.addChild(thinking)
                top.addChild(answer)
            self.tree.addTopLevelItem(top)
        self.tree.setColumnWidth(0, 320)
        for c in range(1, 2 + len(labels)):
            self.tree.setColumnWidth(c, 90 if c == 1 else 200)

    def _show_cell(self, item: QTreeWidgetItem, column: int) -> None:
        text = item.data(column, TEXT_ROLE) or item.data(0, TEXT_ROLE)
        self.detail.setPlainText(str(text or item.text(column)))

    def _show_detail(self, item: QTreeWidgetItem | None, _prev: QTreeWidgetItem | None) -> None:
        if item is not None:
            self._show_cell(item, 0)


def _line(text: str, limit: int = 140) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def _final(r: object) -> str:
    error = getattr(r, "error", "")
    correct = getattr(r, "correct", None)
    final = "error" if error else (getattr(r, "final", "") or "(none)")
    return final + ("" if correct is None else " ✓" if correct else " ✗")
