"""Worker threads for the wizard and the model manager: nothing slow runs on the GUI thread.

`Task` runs one function on a QThread and hands its result (or exception) back through a
signal; `DownloadJob` runs a download plan (planning it first when needed) and forwards the
downloader's events. Both only call `app.core`; the GUI thread only sees signals.
A module-level set keeps running threads referenced until Qt is done with them.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from app.core import model_choice
from app.core.downloads import DownloadControl, DownloadError

_running: set[QThread] = set()


def _keep(thread: QThread) -> None:
    _running.add(thread)
    thread.finished.connect(lambda: _running.discard(thread))


class Task(QThread):
    """Run `fn()` on a worker thread; `sig_result(value)` or `sig_error(exc, traceback)`."""

    sig_result = Signal(object)
    sig_error = Signal(object, str)

    def __init__(self, fn: Callable[[], Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.fn = fn

    def run(self) -> None:
        try:
            value = self.fn()
        except Exception as exc:  # reported on the GUI thread, never swallowed
            self.sig_error.emit(exc, traceback.format_exc())
            return
        self.sig_result.emit(value)

    def start(self, *args: Any) -> None:  # noqa: D102 - QThread.start, kept referenced
        _keep(self)
        super().start(*args)


class DownloadJob(QThread):
    """Plan (if `plan` is None) and download `option`'s files; pause/cancel via `control`.

    Signals: `sig_planned(plan, free_bytes, remaining_bytes)` once the files are known,
    `sig_event(event)` for each downloader event, then exactly one of `sig_done(result)` or
    `sig_failed(error)` (a DownloadError, whose `message` is for the user).
    """

    sig_planned = Signal(object, object, object)
    sig_event = Signal(object)
    sig_done = Signal(object)
    sig_failed = Signal(object)

    def __init__(self, option: model_choice.Option, settings: model_choice.DownloadSettings,
                 control: DownloadControl, plan: Any = None,
                 parent: QObject | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.option, self.settings, self.control, self.plan = option, settings, control, plan

    def run(self) -> None:
        try:
            if self.plan is None:
                self.plan = model_choice.plan_files(self.option, self.settings, self.control)
            free = model_choice.disk_free_for(self.settings)
            left = model_choice.remaining(self.plan, self.settings)
            self.sig_planned.emit(self.plan, free, left)
            result = model_choice.run_download(
                self.plan, self.settings, self.sig_event.emit, self.control
            )
        except DownloadError as exc:
            self.sig_failed.emit(exc)
            return
        except Exception as exc:  # an unexpected failure still ends in words
            err = DownloadError(f"The download failed: {exc}", traceback.format_exc())
            self.sig_failed.emit(err)
            return
        self.sig_done.emit(result)

    def start(self, *args: Any) -> None:  # noqa: D102
        _keep(self)
        super().start(*args)
