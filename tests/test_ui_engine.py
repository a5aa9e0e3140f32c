"""The window with the real engine process (llama.cpp) on scripted GGUF models, offscreen.

The scripted models think "Two plus two makes four." and answer "The answer is 4."; the
`never_closes` one thinks in a loop until stopped, answered-now or killed.
"""

from __future__ import annotations

import os
import signal

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.core.chat_store import ChatStore
from app.core.generation_settings import GenerationSettings
from app.ui.main_window import MainWindow
from app.ui.theme import apply_theme
from scripted import ANSWER_TEXT, THINK_TEXT

pytest.importorskip("llama_cpp")

LOAD_MS = 60_000


@pytest.fixture
def open_window(qtbot, tmp_path):
    from app.core.engine import EngineClient

    made = []

    def make(model=None, db=None, max_tokens=4000) -> MainWindow:
        apply_theme(QApplication.instance(), dark=False)
        w = MainWindow(ChatStore(db or tmp_path / "chats.sqlite3"),
                       EngineClient(load_timeout_s=120), n_ctx=8192)  # fmt: skip
        qtbot.addWidget(w)
        w.show()
        made.append(w)
        if model is not None:
            with qtbot.waitSignal(w.controller.sig_model, timeout=LOAD_MS) as blocker:
                w.controller.load_model(str(model))
            assert blocker.args[0], "the model did not load"
            w.controller.set_settings(GenerationSettings(max_tokens=max_tokens))
        return w

    yield make
    for w in made:
        w.close()
        w.store.close()


def send(qtbot, w: MainWindow, text: str) -> None:
    qtbot.keyClicks(w.composer.input, text)
    qtbot.keyClick(w.composer.input, Qt.Key.Key_Return)


def wait_idle(qtbot, w: MainWindow, timeout: int = 30_000) -> None:
    qtbot.waitUntil(lambda: not w.controller.busy, timeout=timeout)


def test_real_engine_streams_thinking_then_the_answer(open_window, qtbot, scripted_models):
    w = open_window(scripted_models.preopen)
    assert "llama.cpp" in w.model_label.text()
    send(qtbot, w, "What is 2+2?")
    msg = w.chat.last_assistant()
    wait_idle(qtbot, w)
    assert msg.thinking.text().strip() == THINK_TEXT
    assert not msg.thinking.is_open and msg.thinking.header.text().startswith("Thought for")
    assert msg.answer.toPlainText().strip() == ANSWER_TEXT
    saved = w.store.messages(w.controller.conversation_id)[-1]
    assert saved.status == "complete" and saved.content.strip() == ANSWER_TEXT
    assert "</think>" in saved.raw and saved.stats["decode_tps"] > 0
    assert "tokens/s" in w.speed_label.text()
    assert w.meter.use.prompt > 0 and w.meter.use.answer > 0


def test_real_engine_stop_keeps_a_partial_answer(open_window, qtbot, scripted_models):
    w = open_window(scripted_models.never_closes, max_tokens=6000)
    send(qtbot, w, "Think forever")
    msg = w.chat.last_assistant()
    qtbot.waitUntil(lambda: msg.thinking.tokens >= 3, timeout=LOAD_MS)
    qtbot.keyClick(w.composer.input, Qt.Key.Key_Escape)
    wait_idle(qtbot, w)
    saved = w.store.messages(w.controller.conversation_id)[-1]
    assert saved.status == "partial" and saved.thinking.startswith(THINK_TEXT[:3])
    assert saved.stats["stop_reason"] in ("cancelled", "length")
    assert msg.thinking.is_open and "Ended while thinking" in msg.thinking.header.text()


def test_real_engine_answer_now(open_window, qtbot, scripted_models):
    w = open_window(scripted_models.never_closes, max_tokens=6000)
    send(qtbot, w, "Think, then answer when asked")
    msg = w.chat.last_assistant()
    qtbot.waitUntil(lambda: msg.thinking.tokens >= 3, timeout=LOAD_MS)
    qtbot.mouseClick(w.composer.answer_now_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, w)
    assert msg.answer.toPlainText().strip() == ANSWER_TEXT
    assert w.store.messages(w.controller.conversation_id)[-1].status == "complete"


def test_real_engine_regenerate_and_edit(open_window, qtbot, scripted_models):
    w = open_window(scripted_models.preopen)
    send(qtbot, w, "first question")
    wait_idle(qtbot, w)
    qtbot.mouseClick(w.chat.last_assistant().regenerate_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, w)
    cid = w.controller.conversation_id
    assert [m.role for m in w.store.messages(cid)] == ["user", "assistant"]
    user = w.chat.user_widgets()[0]
    qtbot.mouseClick(user.edit_button, Qt.MouseButton.LeftButton)
    user.editor.setPlainText("edited question")
    qtbot.mouseClick(user.send_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, w)
    messages = w.store.messages(cid)
    assert [m.content.strip() for m in messages] == ["edited question", ANSWER_TEXT]


def test_engine_killed_mid_answer_shows_an_error_and_reload_recovers(
    open_window, qtbot, scripted_models
):
    w = open_window(scripted_models.never_closes, max_tokens=6000)
    send(qtbot, w, "Think until killed")
    msg = w.chat.last_assistant()
    qtbot.waitUntil(lambda: msg.thinking.tokens >= 3, timeout=LOAD_MS)
    os.kill(w.bridge.client.pid, signal.SIGKILL)
    wait_idle(qtbot, w)
    assert msg.error_card is not None and "SIGKILL" in msg.error_card.message.text()
    saved = w.store.messages(w.controller.conversation_id)[-1]
    assert saved.status == "error" and saved.thinking.startswith(THINK_TEXT[:3])
    with qtbot.waitSignal(w.controller.sig_model, timeout=LOAD_MS) as blocker:
        qtbot.mouseClick(msg.error_card.reload_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0] and w.bridge.client.pid is not None


def test_restart_shows_the_saved_conversation_with_the_partial_answer(
    open_window, qtbot, scripted_models, tmp_path
):
    db = tmp_path / "restart.sqlite3"
    w = open_window(scripted_models.never_closes, db=db, max_tokens=6000)
    send(qtbot, w, "Closed while thinking")
    msg = w.chat.last_assistant()
    qtbot.waitUntil(lambda: msg.thinking.tokens >= 3, timeout=LOAD_MS)
    w.close()  # quitting mid-answer saves it as partial
    w2 = open_window(db=db)
    w2.sidebar.list.setCurrentRow(0)
    user, answer = w2.chat.messages
    assert user.label.text() == "Closed while thinking"
    assert answer.thinking.text().startswith(THINK_TEXT[:3]) and answer.thinking.is_open
    assert "Interrupted" in answer.note.text()
    assert w2.store.messages(w2.controller.conversation_id)[-1].status == "partial"


def test_reload_engine_keeps_the_plans_settings(open_window, qtbot, scripted_models):
    w = open_window()
    settings = {"n_ctx": 2048, "n_gpu_layers": 0, "n_threads": 1}
    with qtbot.waitSignal(w.controller.sig_model, timeout=LOAD_MS) as first:
        w.load_model_with(str(scripted_models.preopen), settings, {"name": "Scripted R1"})
    assert first.args[0]["n_ctx"] == 2048 and first.args[0]["n_gpu_layers"] == 0
    old_pid = w.bridge.client.pid
    with qtbot.waitSignal(w.controller.sig_model, timeout=LOAD_MS) as again:
        w.controller.reload_engine()
    info = again.args[0]
    assert w.bridge.client.pid != old_pid
    assert info["n_ctx"] == 2048 and info["n_gpu_layers"] == 0


def test_a_failed_load_says_so_in_the_status_bar_not_engine_stopped(
    open_window, qtbot, scripted_models
):
    w = open_window()
    bad = scripted_models.corrupt["not_gguf"]
    with qtbot.waitSignal(w.controller.sig_model, timeout=LOAD_MS) as failed:
        w.controller.load_model(str(bad))
    assert failed.args == [None]
    status = w.model_label.text()
    assert status.startswith(f"{bad.stem} did not load: it could not be opened.")
    assert "Try again, or choose another model" in status and "Engine stopped" not in status
    card = w.chat.banner
    assert card is not None and card.reload_button.text() == "Try again"
    with qtbot.waitSignal(w.controller.sig_model, timeout=LOAD_MS) as again:
        qtbot.mouseClick(card.reload_button, Qt.MouseButton.LeftButton)  # still not a model
    assert again.args == [None] and "did not load" in w.model_label.text()
    with qtbot.waitSignal(w.controller.sig_model, timeout=LOAD_MS) as loaded:
        w.controller.load_model(str(scripted_models.preopen))
    assert loaded.args[0] and w.model_label.text().startswith("r1-preopen")
