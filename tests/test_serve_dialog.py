"""Model → Serve on this computer…: the toggle starts the server on the window's own engine,
the status line says the address, model and requests served, the status bar says when another
program's request holds the engine, and the window does not import the server library at
start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from app.core.chat_store import ChatStore
from app.core.engine import EngineClient
from app.core.engine_share import SERVER
from app.ui.main_window import MainWindow
from app.ui.serve_dialog import BUSY_TEXT, ServeDialog
from app.ui.theme import apply_theme

pytest.importorskip("uvicorn")
ROOT = Path(__file__).resolve().parents[1]
SHOTS = os.environ.get("PONDER_SERVE_SHOTS")  # a folder: the dialog is rendered there


def test_the_window_does_not_import_the_server_library_at_start_up():
    code = (
        "import sys, app.ui.main_window, app.ui.serve_dialog; print([m for m in sys.modules "
        "if m.split('.')[0] in ('starlette', 'uvicorn') or m.startswith('app.serve')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_serve_dialog_toggle_status_and_busy_engine(qtbot, tmp_path, monkeypatch, scripted_models):
    hub = tmp_path / "hub" / "models--test--r1-GGUF" / "snapshots" / "abc"
    hub.mkdir(parents=True)
    (hub / "r1-preopen.gguf").symlink_to(scripted_models.preopen)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "ollama"))
    monkeypatch.setenv("PONDER_CONFIG_DIR", str(tmp_path / "config"))
    apply_theme(QApplication.instance(), dark=False)
    window = MainWindow(ChatStore(tmp_path / "chats.sqlite3"), EngineClient(load_timeout_s=60))
    qtbot.addWidget(window)
    window.show()
    dialog: ServeDialog = window.open_serve_dialog()
    assert dialog.status.text() == "Not serving."
    shoot(dialog, "serve-off.png")
    dialog.port.setValue(free_port())
    controller = window.serve_controller
    with qtbot.waitSignal(controller.sig_state, timeout=20000) as started:
        dialog.toggle.setChecked(True)
    assert started.args[0] is True, started.args
    base = controller.base_url
    assert base.startswith("http://127.0.0.1:") and base.endswith("/v1")
    assert dialog.status.text().startswith(f"Serving at {base} · model loaded: none yet")
    assert not dialog.host.isEnabled()

    with qtbot.waitSignal(controller.sig_status, timeout=30000, check_params_cb=lambda s:
                          s.requests_served == 1):  # fmt: skip
        body = ask(base, "r1-preopen")
    assert body["choices"][0]["message"]["content"].strip() == "The answer is 4."
    assert "model loaded: r1-preopen · 1 request served" in dialog.status.text()
    shoot(dialog, "serve-on.png")

    share = window.bridge.worker.share
    with qtbot.waitSignal(controller.sig_holder, timeout=5000):
        assert share.acquire(SERVER, timeout_s=5)
    assert controller.busy_label.isVisible() and controller.busy_label.text() == BUSY_TEXT
    with qtbot.waitSignal(controller.sig_holder, timeout=5000):
        share.release(SERVER)
    assert not controller.busy_label.isVisible()

    with qtbot.waitSignal(controller.sig_state, timeout=10000):
        dialog.toggle.setChecked(False)
    assert dialog.status.text() == "Not serving." and dialog.host.isEnabled()
    window.close()


def ask(base: str, model: str) -> dict:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "2+2?"}]})
    req = urllib.request.Request(base + "/chat/completions", body.encode(),
                                 {"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shoot(dialog: ServeDialog, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        dialog.adjustSize()
        dialog.grab().save(str(Path(SHOTS) / name))
