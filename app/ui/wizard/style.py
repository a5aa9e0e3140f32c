"""The wizard's and model manager's look: a small stylesheet from the current theme's colours,
and the colours of the option tiers (runs well / slow / needs a server / won't run)."""

from __future__ import annotations

from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QWidget

from app.ui.theme import current

TIER_COLOURS_LIGHT = {
    "good": "#e6f6ea", "slow": "#fff6dd", "server": "#eef0f6", "no": "#f6f0f0",
}  # fmt: skip
TIER_COLOURS_DARK = {
    "good": "#1f3327", "slow": "#3a3320", "server": "#2a2d36", "no": "#352628",
}  # fmt: skip
TIER_TEXT = {"good": "#1a7f37", "slow": "#9a6700", "server": "#57606a", "no": "#b42318"}
TIER_TEXT_DARK = {"good": "#5fd38a", "slow": "#e3b341", "server": "#9ca0a8", "no": "#f08a80"}


def tier_background(tier: str) -> QColor:
    table = TIER_COLOURS_DARK if current().name == "dark" else TIER_COLOURS_LIGHT
    return QColor(table.get(tier, table["server"]))


def tier_foreground(tier: str) -> QColor:
    table = TIER_TEXT_DARK if current().name == "dark" else TIER_TEXT
    return QColor(table.get(tier, table["server"]))


def stylesheet() -> str:
    t = current()
    good = tier_background("good").name()
    good_text = tier_foreground("good").name()
    warn_bg = "#3a3320" if t.name == "dark" else "#fff8e1"
    warn_border = "#7a6520" if t.name == "dark" else "#f0d58a"
    return f"""
    #WizardRoot, #ManagerRoot {{ background: {t.window}; }}
    #StepBar {{ background: {t.sidebar}; border-bottom: 1px solid {t.border}; }}
    #Step {{ color: {t.muted}; font-size: 13px; padding: 10px 6px; }}
    #Step[current="true"] {{ color: {t.text}; font-weight: 700; }}
    #Step[done="true"] {{ color: {t.accent}; }}
    #PageTitle {{ font-size: 22px; font-weight: 650; color: {t.text}; }}
    #PageLead {{ font-size: 14px; color: {t.muted}; }}
    #Card {{ background: {t.surface}; border: 1px solid {t.border}; border-radius: 12px; }}
    #RecCard {{ background: {good}; border: 1px solid {good_text}; border-radius: 12px; }}
    #RecLabel {{ color: {good_text}; font-weight: 700; font-size: 12px;
                 letter-spacing: 1px; }}
    #RecTitle {{ font-size: 20px; font-weight: 700; color: {t.text}; }}
    #RecLine {{ font-size: 14px; color: {t.text}; }}
    #FactLabel {{ color: {t.muted}; font-size: 13px; }}
    #FactValue {{ color: {t.text}; font-size: 14px; font-weight: 600; }}
    #FactNote {{ color: {t.muted}; font-size: 12px; }}
    #Warning {{ background: {warn_bg}; border: 1px solid {warn_border}; border-radius: 10px;
                padding: 10px; color: {t.text}; }}
    #ErrorBox {{ background: {t.error_bg}; border: 1px solid {t.error_border};
                 border-radius: 10px; }}
    #Muted {{ color: {t.muted}; font-size: 12px; }}
    #Big {{ font-size: 15px; color: {t.text}; }}
    #NavBar {{ border-top: 1px solid {t.border}; background: {t.window}; }}
    QTableWidget {{ background: {t.surface}; border: 1px solid {t.border}; border-radius: 8px;
                    gridline-color: transparent; selection-background-color: {t.selection};
                    selection-color: {t.text}; }}
    QHeaderView::section {{ background: {t.sidebar}; color: {t.muted}; border: none;
                            border-bottom: 1px solid {t.border}; padding: 5px 6px;
                            font-weight: 600; }}
    QProgressBar {{ background: {t.surface}; border: 1px solid {t.border}; border-radius: 6px;
                    height: 14px; text-align: center; color: {t.text}; }}
    QProgressBar::chunk {{ background: {t.accent}; border-radius: 5px; }}
    QLineEdit, QComboBox {{ background: {t.surface}; border: 1px solid {t.border};
                            border-radius: 6px; padding: 4px 6px; color: {t.text}; }}
    """


def list_table(columns: list[str] | tuple[str, ...], parent: QWidget | None = None) -> QTableWidget:
    """A read-only table of rows picked one at a time, first column stretched."""
    table = QTableWidget(0, len(columns), parent)
    table.setHorizontalHeaderLabels(list(columns))
    table.verticalHeader().hide()
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setShowGrid(False)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    return table
