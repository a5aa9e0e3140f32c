"""Chat UX details from issue #18, offscreen: disabled primary buttons look disabled, the
window's small promises (Ctrl+N focuses the composer, F2 renames in a full-size editor,
search looks into the thinking), stale status-bar state after a model switch, and a restart
that reopens the last chat and reloads (or, above 8 GB, offers) the last model."""

from __future__ import annotations

import os

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication, QPushButton, QWidget

from app.ui import theme
from app.ui.session_restore import BIG_MODEL_BYTES as BIG
from app.ui.theme import apply_theme


@pytest.mark.parametrize("dark", [False, True])
def test_a_disabled_primary_button_looks_different_from_an_enabled_one(qtbot, dark):
    t = apply_theme(QApplication.instance(), dark=dark)
    sheet = QApplication.instance().styleSheet()
    assert "QPushButton#Primary:disabled" in sheet  # the id rule no longer hides :disabled
    box = QWidget()
    qtbot.addWidget(box)
    on, off = QPushButton("Load", box), QPushButton("Load", box)
    for b, x in ((on, 0), (off, 120)):
        b.setObjectName("Primary")
        b.setGeometry(x, 0, 100, 30)
    off.setEnabled(False)
    box.resize(240, 40)
    box.show()
    qtbot.waitExposed(box)
    image = box.grab().toImage()
    enabled_bg = image.pixelColor(10, 15)
    disabled_bg = image.pixelColor(130, 15)
    assert enabled_bg.name() == QColor(t.accent).name()
    assert disabled_bg.name() == QColor(t.border).name()
    assert enabled_bg != disabled_bg
    apply_theme(QApplication.instance(), dark=False)
    assert theme.current().accent


# -- a session that comes back -----------------------------------------------------------
class RecordingClient:
    """A ScriptedClient that also keeps each load's options."""

    def __new__(cls, *scripts):
        from app.ui.scripted_engine import ScriptedClient

        client = ScriptedClient(*scripts)
        client.load_opts = []
        plain_load = client.load

        def load(path, **opts):
            client.load_opts.append(opts)
            return plain_load(path, **opts)

        client.load = load
        return client


def _window(qtbot, db, client):
    from app.core.chat_store import ChatStore
    from app.ui.main_window import MainWindow

    apply_theme(QApplication.instance(), dark=False)
    w = MainWindow(ChatStore(db), client)
    qtbot.addWidget(w)
    w.show()
    return w


def _close(w) -> None:
    w.close()
    w.store.close()


def _last_session_with(qtbot, db, model: str, name: str = "Big R1") -> int:
    """A first run: `model` loaded and one question answered; returns the chat's id."""
    from app.ui.scripted_engine import Script

    w = _window(qtbot, db, RecordingClient(Script(answer=["Four."])))
    with qtbot.waitSignal(w.controller.sig_model, timeout=5_000):
        w.load_model_with(model, {"n_ctx": 4096, "n_gpu_layers": 0}, {"name": name})
    w.send("What is 2 + 2?")
    qtbot.waitUntil(lambda: not w.controller.busy, timeout=5_000)
    chat = w.controller.conversation_id
    assert chat is not None
    _close(w)
    return chat


def test_a_restart_reopens_the_last_chat_and_reloads_the_last_model(
    qtbot, tmp_path, scripted_models
):
    model = str(scripted_models.preopen)
    db = tmp_path / "chats.sqlite3"
    chat = _last_session_with(qtbot, db, model, "Tiny R1")

    client = RecordingClient()
    w = _window(qtbot, db, client)  # "restart": a new window on the same chats
    assert w.model_label.text() == "No model loaded"
    with qtbot.waitSignal(w.controller.sig_model, timeout=5_000):
        did = w.restore_session()
    assert "chat reopened" in did and "reloading" in did
    assert w.controller.conversation_id == chat
    assert w.sidebar.list.currentItem() is not None
    texts = [getattr(m, "message_id", None) for m in w.chat.messages]
    assert len(texts) == 2  # the question and its answer are on screen again
    assert client.loads == [model]
    assert client.load_opts[0]["n_ctx"] == 4096 and client.load_opts[0]["n_gpu_layers"] == 0
    assert w.model_label.text().startswith("Tiny R1")
    assert w.meter.label.text().endswith("/ 4,096")
    _close(w)


def _pretend_size(monkeypatch, path: str, size: int) -> None:
    """The size lookup says `path` has `size` bytes (no 8 GB file is written)."""
    import app.ui.session_restore as session_restore

    real = session_restore.os.path.getsize
    monkeypatch.setattr(session_restore.os.path, "getsize",
                        lambda p: size if os.fspath(p) == path else real(p))  # fmt: skip


def test_a_restart_offers_a_big_model_and_loads_it_only_when_asked(
    qtbot, tmp_path, scripted_models, monkeypatch
):
    from app.ui.session_restore import BIG_MODEL_BYTES

    model = str(scripted_models.preopen)
    db = tmp_path / "chats.sqlite3"
    chat = _last_session_with(qtbot, db, model)
    _pretend_size(monkeypatch, model, 9 * 10**9)
    assert BIG_MODEL_BYTES < 9 * 10**9

    client = RecordingClient()
    w = _window(qtbot, db, client)  # "restart"
    loads: list = []
    w.controller.sig_loading.connect(loads.append)
    did = w.restore_session()
    assert did == "chat reopened, offered Big R1"
    assert w.controller.conversation_id == chat and len(w.chat.messages) == 2
    banner = w.chat.banner
    assert banner is not None
    qtbot.waitUntil(lambda: banner.isVisibleTo(w), timeout=2_000)
    assert banner.label.text() == "Last time you used Big R1 (9.0 GB). Load it again?"
    qtbot.wait(300)  # nothing loads while the offer waits
    assert client.loads == [] and loads == [] and w.controller.model_info is None
    assert w.model_label.text() == "No model loaded"

    with qtbot.waitSignal(w.controller.sig_model, timeout=5_000) as loaded:
        qtbot.mouseClick(banner.buttons["Load it"], Qt.MouseButton.LeftButton)
    assert loaded.args[0] and client.loads == [model]
    assert client.load_opts[0]["n_ctx"] == 4096 and client.load_opts[0]["n_gpu_layers"] == 0
    assert w.model_label.text().startswith("Big R1") and w.chat.banner is None
    _close(w)


@pytest.mark.parametrize(("size", "offered"), [(BIG, False), (BIG + 1, True)])
def test_the_offer_starts_above_8_gb(qtbot, tmp_path, scripted_models, monkeypatch, size,
                                     offered):  # fmt: skip
    model = str(scripted_models.preopen)
    db = tmp_path / "chats.sqlite3"
    _last_session_with(qtbot, db, model)
    _pretend_size(monkeypatch, model, size)
    client = RecordingClient()
    w = _window(qtbot, db, client)
    if offered:
        did = w.restore_session()
    else:
        with qtbot.waitSignal(w.controller.sig_model, timeout=5_000):
            did = w.restore_session()
    assert ("offered Big R1" in did) is offered and ("reloading Big R1" in did) is not offered
    assert client.loads == ([] if offered else [model])
    _close(w)


def test_a_chat_opened_without_a_model_shows_no_invented_context(qtbot, tmp_path):
    from app.ui.scripted_engine import Script

    db = tmp_path / "chats.sqlite3"
    w = _window(qtbot, db, RecordingClient(Script(answer=["Hi."])))
    with qtbot.waitSignal(w.controller.sig_model, timeout=5_000):
        w.controller.load_model("/models/Tiny-R1-Q4_K_M.gguf")
    w.send("Hello")
    qtbot.waitUntil(lambda: not w.controller.busy, timeout=5_000)
    chat = w.controller.conversation_id
    assert w.speed_label.text()  # the answer's speed is shown
    _close(w)
    w = _window(qtbot, db, RecordingClient())
    w.controller.open_conversation(chat)
    assert w.meter.label.text() == "Context —"
    _close(w)


def test_switching_models_clears_the_old_speed_and_names_match_the_manager(qtbot, tmp_path):
    from app.ui.scripted_engine import Script

    w = _window(qtbot, tmp_path / "c.sqlite3", RecordingClient(Script(answer=["Hi."])))
    with qtbot.waitSignal(w.controller.sig_model, timeout=5_000):
        w.controller.load_model("/models/gemma-3-270m-it-Q4_K_M.gguf")
    # the status bar names the model as the model manager does (the file, not the header)
    assert w.model_label.text().startswith("gemma-3-270m-it ·")
    w.send("Hello")
    qtbot.waitUntil(lambda: not w.controller.busy, timeout=5_000)
    assert "tokens/s" in w.speed_label.text()
    with qtbot.waitSignal(w.controller.sig_model, timeout=5_000):
        w.controller.load_model("/models/Other-Q8_0.gguf")
        assert w.speed_label.text() == ""  # not the previous model's speed
    assert w.speed_label.text() == "" and w.model_label.text().startswith("Other ·")
    _close(w)


def test_ctrl_n_opens_a_new_chat_with_the_cursor_in_the_composer(qtbot, tmp_path):
    w = _window(qtbot, tmp_path / "c.sqlite3", RecordingClient())
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=5_000)
    w.sidebar.search.setFocus()
    qtbot.waitUntil(w.sidebar.search.hasFocus, timeout=5_000)
    w.new_action.trigger()
    qtbot.waitUntil(w.composer.input.hasFocus, timeout=5_000)
    _close(w)


# -- the engine's threads ----------------------------------------------------------------
def test_threads_setting_is_kept_and_used_for_the_next_load(qtbot, tmp_path, monkeypatch):
    from app.core.generation_settings import preset_for_model
    from app.core.session_state import SessionState, physical_cores
    from app.ui import settings_dialog

    db = tmp_path / "c.sqlite3"
    client = RecordingClient()
    w = _window(qtbot, db, client)
    dialog = settings_dialog.SettingsDialog(w.controller.settings(), preset_for_model(None), w)
    assert dialog.threads() == 0 and str(physical_cores()) in dialog.threads_box.specialValueText()
    dialog.threads_box.setValue(1)
    monkeypatch.setattr(settings_dialog.SettingsDialog, "exec", lambda self: 1)
    monkeypatch.setattr(settings_dialog.SettingsDialog, "threads", lambda self: 1)
    w.open_settings()
    assert SessionState(tmp_path).threads() == 1
    with qtbot.waitSignal(w.controller.sig_model, timeout=5_000):
        w.controller.load_model("/models/Tiny-Q4_K_M.gguf", n_gpu_layers=0)
    assert client.load_opts[-1]["n_threads"] == 1
    _close(w)
    w = _window(qtbot, db, RecordingClient())  # kept across a restart
    assert w.controller.threads == 1
    _close(w)


def test_the_engine_defaults_to_one_thread_per_physical_core(engine, scripted_models):
    pytest.importorskip("llama_cpp")
    from app.core.session_state import physical_cores

    info = engine.load(str(scripted_models.preopen), n_ctx=512)
    assert info["n_threads"] == physical_cores()
    info = engine.load(str(scripted_models.preopen), n_ctx=512, n_threads=1)
    assert info["n_threads"] == 1


# -- the chat list -----------------------------------------------------------------------
def test_search_looks_into_the_thinking(tmp_path):
    from app.core.chat_store import ChatStore

    store = ChatStore(tmp_path / "c.sqlite3")
    conv = store.create_conversation("Numbers")
    store.add_message(conv.id, "user", "What is 2 + 2?")
    store.add_message(conv.id, "assistant", "4", thinking="Adding pelicans: two and two.")
    assert [c.id for c in store.search("pelicans")] == [conv.id]
    assert store.search("giraffes") == []
    store.close()


def test_f2_rename_opens_an_editor_as_tall_as_the_row(qtbot, tmp_path):
    from PySide6.QtWidgets import QLineEdit

    from app.ui.scripted_engine import Script

    w = _window(qtbot, tmp_path / "c.sqlite3", RecordingClient(Script(answer=["Hi."])))
    with qtbot.waitSignal(w.controller.sig_model, timeout=5_000):
        w.controller.load_model("/models/Tiny-Q4_K_M.gguf")
    w.send("Hello there")
    qtbot.waitUntil(lambda: not w.controller.busy, timeout=5_000)
    item = w.sidebar.list.currentItem()
    assert item is not None
    w.rename_current()  # what F2 does
    editor = w.sidebar.list.findChild(QLineEdit, "RenameEditor")
    qtbot.waitUntil(lambda: editor is not None or bool(
        w.sidebar.list.findChild(QLineEdit, "RenameEditor")), timeout=5_000)  # fmt: skip
    editor = w.sidebar.list.findChild(QLineEdit, "RenameEditor")
    row = w.sidebar.list.visualItemRect(item)
    assert editor.height() >= row.height() - 4 and editor.height() >= 20
    assert editor.contentsRect().height() >= editor.fontMetrics().height()
    w.grab().save(str(tmp_path / "rename.png"))
    _close(w)
