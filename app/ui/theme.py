"""Light and dark themes: a Fusion palette plus a small stylesheet (resources/styles).

The stylesheet uses `@name` tokens replaced by the theme's colours; widgets that paint
colours themselves (the context meter, highlighted \\boxed answers) read `current()`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from app.core.paths import resources_dir

STYLES = resources_dir() / "styles"


@dataclass(frozen=True)
class Theme:
    name: str
    window: str
    sidebar: str
    surface: str
    text: str
    muted: str
    accent: str
    accent_text: str
    border: str
    user_bubble: str
    thinking_bg: str
    code_bg: str
    error_bg: str
    error_border: str
    boxed_bg: str
    prompt_bar: str
    thinking_bar: str
    answer_bar: str
    selection: str


LIGHT = Theme(
    "light",
    window="#f7f7f8",
    sidebar="#eceef2",
    surface="#ffffff",
    text="#1f2328",
    muted="#6b7280",
    accent="#4f46e5",
    accent_text="#ffffff",
    border="#dcdfe4",
    user_bubble="#e7eaff",
    thinking_bg="#f3f4f6",
    code_bg="#f1f3f5",
    error_bg="#fdeeee",
    error_border="#eeb4b0",
    boxed_bg="#fff1b8",
    prompt_bar="#94a3b8",
    thinking_bar="#a78bfa",
    answer_bar="#4f46e5",
    selection="#c7d2fe",
)
DARK = Theme(
    "dark",
    window="#1d1e21",
    sidebar="#17181a",
    surface="#25272b",
    text="#e7e7ea",
    muted="#9ca0a8",
    accent="#8b8cf8",
    accent_text="#16171a",
    border="#34363c",
    user_bubble="#2e3150",
    thinking_bg="#212327",
    code_bg="#2b2d33",
    error_bg="#3a2325",
    error_border="#7a3b3b",
    boxed_bg="#4d4213",
    prompt_bar="#64748b",
    thinking_bar="#8b5cf6",
    answer_bar="#8b8cf8",
    selection="#3f437a",
)

_current = LIGHT


def current() -> Theme:
    return _current


def system_prefers_dark() -> bool:
    choice = os.environ.get("PONDER_THEME", "").lower()
    if choice in ("light", "dark"):
        return choice == "dark"
    hints = QGuiApplication.styleHints()
    return hints is not None and hints.colorScheme() == Qt.ColorScheme.Dark


def _palette(t: Theme) -> QPalette:
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: t.window,
        QPalette.ColorRole.WindowText: t.text,
        QPalette.ColorRole.Base: t.surface,
        QPalette.ColorRole.AlternateBase: t.thinking_bg,
        QPalette.ColorRole.Text: t.text,
        QPalette.ColorRole.Button: t.surface,
        QPalette.ColorRole.ButtonText: t.text,
        QPalette.ColorRole.Highlight: t.selection,
        QPalette.ColorRole.HighlightedText: t.text,
        QPalette.ColorRole.ToolTipBase: t.surface,
        QPalette.ColorRole.ToolTipText: t.text,
        QPalette.ColorRole.PlaceholderText: t.muted,
        QPalette.ColorRole.Link: t.accent,
        QPalette.ColorRole.Mid: t.border,
    }
    for role, colour in roles.items():
        p.setColor(role, QColor(colour))
    for role in (
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
    ):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(t.muted))
    return p


def stylesheet(t: Theme) -> str:
    text = (STYLES / "ponder.qss").read_text(encoding="utf-8")
    # longest names first so @accent_text is not eaten by @accent
    for name in sorted(t.__dataclass_fields__, key=len, reverse=True):
        text = text.replace(f"@{name}", getattr(t, name))
    return text


def apply_theme(app: QApplication, dark: bool | None = None) -> Theme:
    """Apply the light or dark theme (the system's choice when `dark` is None)."""
    global _current
    if dark is None:
        dark = system_prefers_dark()
    _current = DARK if dark else LIGHT
    app.setStyle("Fusion")
    app.setPalette(_palette(_current))
    app.setStyleSheet(stylesheet(_current))
    return _current
