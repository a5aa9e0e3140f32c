"""Show a folder in the file manager, or, where none is registered (a bare desktop), say
where it is and put the path on the clipboard, so the button never does nothing."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QMessageBox, QWidget

# tests replace it: opens a URL, False when nothing could open it
open_url = QDesktopServices.openUrl


def reveal_folder(parent: QWidget | None, folder: str | os.PathLike[str],
                  what: str = "The folder") -> QMessageBox | None:  # fmt: skip
    """Open `folder` in the file manager; when that fails, show its path (selectable) and
    copy it. Returns the message box shown, or None when the file manager opened."""
    path = str(Path(folder))
    if open_url(QUrl.fromLocalFile(path)):
        return None
    QGuiApplication.clipboard().setText(path)
    box = QMessageBox(QMessageBox.Icon.Information, "Ponder", "", QMessageBox.StandardButton.Ok,
                      parent)  # fmt: skip
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.setText(f"{what} is at:\n{path}\n\nNo file manager could open it here; the path is "
                "copied to the clipboard.")  # fmt: skip
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    box.open()
    return box
