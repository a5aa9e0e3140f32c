"""Logs in the platform folder with rotation, and readable crash reports."""

from __future__ import annotations

import logging
import sys

from app.core import logs


def test_setup_logging_writes_to_the_log_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("PONDER_LOG_DIR", str(tmp_path))
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        path = logs.setup_logging()
        logging.getLogger("ponder.test").warning("hello from the test")
        for h in root.handlers:
            h.flush()
        assert path == tmp_path / logs.LOG_NAME
        assert "hello from the test" in path.read_text()
        handler = next(h for h in root.handlers if getattr(h, "_ponder", False))
        assert handler.maxBytes == logs.MAX_BYTES and handler.backupCount == logs.BACKUPS
    finally:
        for h in root.handlers[:]:
            if h not in before:
                root.removeHandler(h)
                h.close()


def test_crash_report_says_what_happened_in_words(tmp_path):
    try:
        raise RuntimeError("the flux capacitor broke")
    except RuntimeError:
        path = logs.write_crash_report(*sys.exc_info(), folder=tmp_path)
    text = path.read_text()
    assert text.startswith("Ponder stopped because of an error")
    assert "RuntimeError: the flux capacitor broke" in text
    assert "Traceback" in text and "python:" in text


def test_crash_handler_writes_a_report_and_calls_the_previous_hook(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "excepthook", lambda *a: seen.append(a[0]))
    logs.install_crash_handler(tmp_path)
    try:
        raise ValueError("boom")
    except ValueError:
        sys.excepthook(*sys.exc_info())
    assert seen == [ValueError]
    assert len(list(tmp_path.glob("crash-*.txt"))) == 1
