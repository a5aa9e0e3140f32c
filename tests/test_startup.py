"""Start-up stays light: the window shows without importing an engine or huggingface_hub."""

from __future__ import annotations

import os
import subprocess
import sys


def test_window_shows_without_heavy_imports(tmp_path):
    env = dict(os.environ, PONDER_STARTUP_PROBE="1", QT_QPA_PLATFORM="offscreen",
               PONDER_LOG_DIR=str(tmp_path))  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-m", "app", "--db", str(tmp_path / "chats.sqlite3")],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "window shown after" in out.stdout
    assert "heavy modules: none" in out.stdout
    assert (tmp_path / "ponder.log").exists()
