"""The chat window offscreen with a scripted stand-in engine: streaming, controls, errors.

These drive the real widgets, controller, worker thread and SQLite store; only the engine
is the scripted stand-in (app/ui/scripted_engine.py). tests/test_ui_engine.py repeats the
key paths with the real engine process on scripted GGUF models.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtWidgets import QApplication

from app.core.chat_store import ChatStore
from app.ui.main_window import MainWindow
from app.ui.scripted_engine import Script, ScriptedClient
from app.ui.theme import apply_theme


@pytest.fixture
def make_window(qtbot, tmp_path):
    made = []

    def make(*scripts: Script, client=None, db=None, load=True) -> MainWindow:
        apply_theme(QApplication.instance(), dark=False)
        store = ChatStore(db or tmp_path / "chats.sqlite3")
        w = MainWindow(store, client or ScriptedClient(*scripts))
        qtbot.addWidget(w)
        w.show()
        made.append(w)
        if load:
            with qtbot.waitSignal(w.controller.sig_model, timeout=5000):
                w.controller.load_model("/models/DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf")
        return w

    yield make
    for w in made:
        w.close()
        w.store.close()


def type_and_send(qtbot, w: MainWindow, text: str) -> None:
    w.composer.input.setFocus()
    qtbot.keyClicks(w.composer.input, text)
    qtbot.keyClick(w.composer.input, Qt.Key.Key_Return)


def wait_idle(qtbot, w: MainWindow) -> None:
    qtbot.waitUntil(lambda: not w.controller.busy, timeout=5000)


def test_send_streams_thinking_live_then_collapses_when_the_answer_starts(make_window, qtbot):
    client = ScriptedClient(Script(pause_at=3))
    w = make_window(client=client)
    assert "Q4_K_M" in w.model_label.text() and "llama.cpp" in w.model_label.text()
    type_and_send(qtbot, w, "What is 2+2?")
    assert w.composer.input.toPlainText() == ""
    msg = w.chat.last_assistant()
    qtbot.waitUntil(lambda: msg.thinking.text() == "Two plus two", timeout=5000)
    assert msg.thinking.live and msg.thinking.is_open
    assert msg.thinking.header.text().startswith("Thinking… ")
    assert msg.thinking.header.text().endswith("· 3 tokens")
    assert w.composer.stop_button.isVisible() and w.composer.answer_now_button.isVisible()
    client.generations[0].resume()
    wait_idle(qtbot, w)
    assert not msg.thinking.is_open
    assert msg.thinking.header.text().startswith("Thought for ")
    assert msg.thinking.header.text().endswith("· 6 tokens")  # the closing tag too
    assert msg.answer.toPlainText().strip() == "The answer is 4."  # Markdown rendered
    assert w.composer.send_button.isVisible() and not w.composer.answer_now_button.isVisible()
    qtbot.mouseClick(msg.thinking.header, Qt.MouseButton.LeftButton)
    assert msg.thinking.is_open
    (conv,) = w.store.conversations()
    assert conv.title == "What is 2+2?"
    user, answer = w.store.messages(conv.id)
    assert (answer.status, answer.content) == ("complete", "The answer is **4**.")
    assert answer.thinking == "Two plus two is four." and "</think>" in answer.raw
    assert answer.stats["thinking_tokens"] == 6 and answer.settings["temperature"] == 0.6
    assert answer.stats["answer_tokens"] == 4  # exact: the closing tag counts as thinking
    assert client.calls[0] == [{"role": "user", "content": "What is 2+2?"}]


def test_shift_enter_adds_a_line_instead_of_sending(make_window, qtbot):
    w = make_window()
    qtbot.keyClicks(w.composer.input, "line one")
    qtbot.keyClick(w.composer.input, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(w.composer.input, "line two")
    assert w.composer.input.toPlainText() == "line one\nline two"
    assert w.store.conversations() == []


def test_stop_keeps_the_partial_thinking_and_says_so(make_window, qtbot):
    client = ScriptedClient(Script(pause_at=2))
    w = make_window(client=client)
    type_and_send(qtbot, w, "Think hard")
    msg = w.chat.last_assistant()
    qtbot.waitUntil(lambda: msg.thinking.tokens == 2, timeout=5000)
    qtbot.mouseClick(w.composer.stop_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, w)
    assert msg.thinking.is_open and "Ended while thinking (stopped)" in msg.thinking.header.text()
    assert "partial" in msg.note.text()
    saved = w.store.messages(w.controller.conversation_id)[-1]
    assert saved.status == "partial" and saved.thinking == "Two plus"
    assert saved.stats["stop_reason"] == "cancelled"


def test_escape_stops_the_answer(make_window, qtbot):
    client = ScriptedClient(Script(pause_at=1))
    w = make_window(client=client)
    type_and_send(qtbot, w, "Think")
    qtbot.waitUntil(lambda: bool(client.generations) and client.generations[0].paused.is_set())
    qtbot.keyClick(w.composer.input, Qt.Key.Key_Escape)
    wait_idle(qtbot, w)
    assert client.generations[0].cancelled
    assert w.store.messages(w.controller.conversation_id)[-1].status == "partial"


def test_answer_now_ends_the_thinking_and_the_model_answers(make_window, qtbot):
    client = ScriptedClient(Script(pause_at=2))
    w = make_window(client=client)
    type_and_send(qtbot, w, "Long problem")
    msg = w.chat.last_assistant()
    qtbot.waitUntil(lambda: msg.thinking.tokens == 2, timeout=5000)
    qtbot.mouseClick(w.composer.answer_now_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, w)
    assert client.generations[0].answer_requested
    assert msg.thinking.text() == "Two plus" and not msg.thinking.is_open
    assert msg.answer.toPlainText().strip() == "The answer is 4."
    assert w.store.messages(w.controller.conversation_id)[-1].status == "complete"


def test_thinking_budget_is_sent_with_the_request(make_window, qtbot):
    client = ScriptedClient()
    w = make_window(client=client)
    w.composer.budget.setCurrentIndex(w.composer.budget.findData(1024))
    type_and_send(qtbot, w, "Budgeted")
    wait_idle(qtbot, w)
    assert client.params[-1]["thinking_budget"] == 1024
    assert client.params[-1]["temperature"] == 0.6 and client.params[-1]["top_p"] == 0.95


def test_regenerate_replaces_the_last_answer(make_window, qtbot):
    client = ScriptedClient(Script(answer=["First."]), Script(answer=["Second."]))
    w = make_window(client=client)
    type_and_send(qtbot, w, "Q")
    wait_idle(qtbot, w)
    first = w.chat.last_assistant()
    assert first.regenerate_button.isVisibleTo(first)
    qtbot.mouseClick(first.regenerate_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, w)
    messages = w.store.messages(w.controller.conversation_id)
    assert [(m.role, m.content) for m in messages] == [("user", "Q"), ("assistant", "Second.")]
    assert len(w.chat.messages) == 2
    assert w.chat.last_assistant().answer.toPlainText().strip() == "Second."
    assert client.calls[1] == [{"role": "user", "content": "Q"}]


def test_edit_a_user_message_and_resend_from_there(make_window, qtbot):
    client = ScriptedClient(Script(answer=["A1."]), Script(answer=["A2."]), Script(answer=["B."]))
    w = make_window(client=client)
    type_and_send(qtbot, w, "first")
    wait_idle(qtbot, w)
    type_and_send(qtbot, w, "second")
    wait_idle(qtbot, w)
    first_user = w.chat.user_widgets()[0]
    qtbot.mouseClick(first_user.edit_button, Qt.MouseButton.LeftButton)
    first_user.editor.setPlainText("first, edited")
    qtbot.mouseClick(first_user.send_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, w)
    messages = w.store.messages(w.controller.conversation_id)
    assert [(m.role, m.content) for m in messages] == [
        ("user", "first, edited"),
        ("assistant", "B."),
    ]
    assert client.calls[-1] == [{"role": "user", "content": "first, edited"}]
    assert len(w.chat.messages) == 2


def test_history_sent_to_the_model_has_no_earlier_thinking(make_window, qtbot):
    client = ScriptedClient()
    w = make_window(client=client)
    type_and_send(qtbot, w, "one")
    wait_idle(qtbot, w)
    type_and_send(qtbot, w, "two")
    wait_idle(qtbot, w)
    assert client.calls[-1] == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "The answer is **4**."},
        {"role": "user", "content": "two"},
    ]


def test_engine_crash_mid_answer_is_shown_with_a_reload_button(make_window, qtbot):
    client = ScriptedClient(Script(crash_at=7), Script())
    w = make_window(client=client)
    type_and_send(qtbot, w, "crash please")
    wait_idle(qtbot, w)
    msg = w.chat.last_assistant()
    assert msg.error_card is not None and msg.error_card.isVisibleTo(w)
    assert "stopped unexpectedly" in msg.error_card.findChild(type(msg.note), "ErrorTitle").text()
    assert "Engine stopped" in w.model_label.text()
    saved = w.store.messages(w.controller.conversation_id)[-1]
    assert saved.status == "error" and saved.stats["error"]["kind"] == "engine_crashed"
    assert saved.thinking == "Two plus two is four." and saved.content == "The"
    with qtbot.waitSignal(w.controller.sig_model, timeout=5000):
        qtbot.mouseClick(msg.error_card.reload_button, Qt.MouseButton.LeftButton)
    assert client.closed >= 1 and len(client.loads) == 2
    type_and_send(qtbot, w, "again")
    wait_idle(qtbot, w)
    assert w.store.messages(w.controller.conversation_id)[-1].status == "complete"


def test_load_failure_is_shown_in_the_chat(make_window, qtbot):
    client = ScriptedClient(Script(load_error=("bad_model", "model.gguf is not a GGUF file.")))
    w = make_window(client=client, load=False)
    with qtbot.waitSignal(w.controller.sig_model, timeout=5000) as blocker:
        w.controller.load_model("/tmp/model.gguf")
    assert blocker.args == [None]
    assert w.chat.banner is not None
    assert "not a GGUF" in w.chat.banner.message.text()


def test_sending_without_a_model_asks_for_one(make_window, qtbot):
    w = make_window(load=False)
    type_and_send(qtbot, w, "hello")
    assert w.composer.input.toPlainText() == "hello"
    assert "Load a model" in w.chat.banner.label.text()
    assert w.store.conversations() == []


def test_a_restart_shows_the_saved_conversation_with_its_partial_message(
    make_window, qtbot, tmp_path
):
    from app.core import stream_owner

    db = tmp_path / "restart.sqlite3"
    client = ScriptedClient(Script(pause_at=3))
    w = make_window(client=client, db=db)
    type_and_send(qtbot, w, "interrupted question")
    msg = w.chat.last_assistant()
    qtbot.waitUntil(lambda: msg.thinking.tokens == 3, timeout=5000)
    message_id = w.controller.stream.answer.message_id
    # the worker thread appends the text within a second, while the answer waits
    qtbot.waitUntil(lambda: w.store.message(message_id).thinking == "Two plus two", timeout=3000)
    stream_owner.unregister(str(db), message_id)  # as if its process had been killed
    w2 = make_window(db=db, load=False)
    (conv,) = w2.store.conversations()
    w2.sidebar.list.setCurrentRow(0)
    assert w2.controller.conversation_id == conv.id
    user, answer = w2.chat.messages
    assert user.label.text() == "interrupted question"
    assert answer.thinking.text() == "Two plus two" and answer.thinking.is_open
    assert "Interrupted" in answer.note.text()
    assert w2.store.messages(conv.id)[-1].status == "partial"


def test_ctrl_n_starts_a_new_chat_and_conversations_can_be_searched(make_window, qtbot):
    w = make_window()
    type_and_send(qtbot, w, "about integrals")
    wait_idle(qtbot, w)
    w.new_action.trigger()
    assert w.controller.conversation_id is None and w.chat.messages == []
    type_and_send(qtbot, w, "about cats")
    wait_idle(qtbot, w)
    assert w.sidebar.list.count() == 2
    w.sidebar.search.setText("integral")
    assert w.sidebar.list.count() == 1 and w.sidebar.list.item(0).text() == "about integrals"
    w.sidebar.search.setText("answer is")  # message text
    assert w.sidebar.list.count() == 2


def test_rename_and_delete_with_undo_from_the_sidebar(make_window, qtbot):
    w = make_window()
    type_and_send(qtbot, w, "keep this chat")
    wait_idle(qtbot, w)
    cid = w.controller.conversation_id
    w.sidebar.sig_rename.emit(cid, "Renamed")
    assert w.sidebar.list.item(0).text() == "Renamed"
    w.sidebar.delete_current()
    assert w.sidebar.list.count() == 0 and w.sidebar.undo_bar.isVisible()
    qtbot.mouseClick(w.sidebar.undo_button, Qt.MouseButton.LeftButton)
    assert w.sidebar.list.count() == 1 and w.controller.conversation_id == cid
    assert len(w.chat.messages) == 2


def test_warns_before_sending_a_turn_that_will_not_fit(make_window, qtbot):
    client = ScriptedClient(n_ctx=600)
    w = make_window(client=client)
    w.controller.n_ctx = 600
    type_and_send(qtbot, w, "word " * 400)
    assert w.chat.banner is not None and "may not fit" in w.chat.banner.label.text()
    assert client.calls == []
    qtbot.mouseClick(w.chat.banner.buttons["Send anyway"], Qt.MouseButton.LeftButton)
    wait_idle(qtbot, w)
    assert len(client.calls) == 1


def test_markdown_answer_has_boxed_highlight_code_copy_and_raw_view(make_window, qtbot):
    answer = ["So", " \\boxed{2000}.\n\n", "```python\n", "print(2000)\n", "```\n"]
    client = ScriptedClient(Script(answer=answer))
    w = make_window(client=client)
    type_and_send(qtbot, w, "sum?")
    wait_idle(qtbot, w)
    msg = w.chat.last_assistant()
    text = msg.answer.toPlainText()
    assert "\\boxed" not in text and "2000" in text and "Copy code" in text
    assert msg.answer.code_blocks == ["print(2000)"]
    msg.answer.anchorClicked.emit(QUrl("copy:0"))
    assert QApplication.clipboard().text() == "print(2000)"
    qtbot.mouseClick(msg.copy_thinking_button, Qt.MouseButton.LeftButton)
    assert QApplication.clipboard().text() == "Two plus two is four."
    qtbot.mouseClick(msg.raw_button, Qt.MouseButton.LeftButton)
    assert msg.raw_view.isVisible() and "</think>" in msg.raw_view.toPlainText()


def test_drop_old_turns_keeps_them_on_screen_but_not_in_the_prompt(make_window, qtbot):
    client = ScriptedClient(Script(answer=["short"]))
    w = make_window(client=client)
    w.controller.n_ctx = 1200
    type_and_send(qtbot, w, "old " * 300)
    wait_idle(qtbot, w)
    type_and_send(qtbot, w, "new question " * 80)
    assert "may not fit" in w.chat.banner.label.text()
    qtbot.mouseClick(w.chat.banner.buttons["Drop old turns"], Qt.MouseButton.LeftButton)
    wait_idle(qtbot, w)
    assert client.calls[-1] == [{"role": "user", "content": ("new question " * 80).strip()}]
    assert len(w.chat.messages) == 4


def test_help_opens_the_logs_folder(make_window, qtbot, tmp_path, monkeypatch):
    from PySide6.QtCore import QObject, Slot
    from PySide6.QtGui import QDesktopServices

    opened: list[str] = []

    class Handler(QObject):
        @Slot(QUrl)
        def show(self, url: QUrl) -> None:
            opened.append(url.toLocalFile())

    monkeypatch.setenv("PONDER_LOG_DIR", str(tmp_path / "logs"))
    handler = Handler()
    QDesktopServices.setUrlHandler("file", handler, "show")
    try:
        w = make_window(load=False)
        help_menu = next(a.menu() for a in w.menuBar().actions() if a.text() == "&Help")
        action = next(a for a in help_menu.actions() if "logs" in a.text())
        action.trigger()
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert opened == [str(tmp_path / "logs")]
    assert (tmp_path / "logs").is_dir()


def test_a_saved_server_model_loads_through_the_remote_engine(make_window, qtbot):
    from app.core.remote import RemoteModel

    w = make_window(load=False)
    entry = RemoteModel("http://gpu-box:8000/v1", "deepseek-ai/DeepSeek-R1", label="R1 on gpu-box")
    with qtbot.waitSignal(w.controller.sig_model, timeout=5000):
        w.load_remote(entry, api_key="sk-test")
    assert w.bridge.client.loads[-1] == "http://gpu-box:8000/v1"
    opts = w.controller.load_opts
    assert opts["engine"] == "openai" and opts["model"] == "deepseek-ai/DeepSeek-R1"
    assert opts["api_key"] == "sk-test" and opts["verify_tls"] is True
    assert w.connect_action.text() == "&Connect to a server…"
    # the server decides how long the model thinks: no Answer now, no budget
    assert not w.composer.can_steer and not w.composer.budget.isEnabled()
    with qtbot.waitSignal(w.controller.sig_model, timeout=5000):
        w.controller.load_model("/models/local.gguf")
    assert w.composer.can_steer and w.composer.budget.isEnabled()


def test_after_a_stopped_turn_the_next_prompt_keeps_roles_alternating(make_window, qtbot):
    client = ScriptedClient(Script(pause_at=2), Script())
    w = make_window(client=client)
    type_and_send(qtbot, w, "first try")
    qtbot.waitUntil(lambda: bool(client.generations) and client.generations[0].paused.is_set())
    qtbot.keyClick(w.composer.input, Qt.Key.Key_Escape)
    wait_idle(qtbot, w)
    type_and_send(qtbot, w, "second try")
    wait_idle(qtbot, w)
    # the stopped turn had no answer: it is not sent, and the two questions become one turn
    assert client.calls[-1] == [{"role": "user", "content": "first try\n\nsecond try"}]
    assert len(w.chat.messages) == 4  # everything is still shown


def test_loading_a_model_while_answering_stops_the_answer_first(make_window, qtbot):
    client = ScriptedClient(Script(thinking=[" step"] * 400, rate=100), Script())
    w = make_window(client=client)
    measured: list[str] = []
    w.controller.sig_answer_measured.connect(lambda path, done, n_ctx: measured.append(path))
    type_and_send(qtbot, w, "long question")
    msg = w.chat.last_assistant()
    qtbot.waitUntil(lambda: msg.thinking.tokens >= 5, timeout=5000)
    with qtbot.waitSignal(w.controller.sig_model, timeout=5000):
        w.controller.load_model("/models/other-Q8_0.gguf")
    wait_idle(qtbot, w)
    saved = w.store.messages(w.controller.conversation_id)[-1]
    assert saved.status == "partial" and saved.stats["stop_reason"] == "cancelled"
    assert client.generations[0].cancelled and client.loads[-1] == "/models/other-Q8_0.gguf"
    qtbot.waitUntil(lambda: bool(measured), timeout=3000)
    assert measured == ["/models/DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf"]  # not the new one


def test_a_full_disk_ends_the_answer_with_words_not_an_endless_thinking(
    make_window, qtbot, tmp_path
):
    import sqlite3

    from app.core.stream_owner import DISK_FULL

    class FullDisk(ChatStore):
        def append_streaming(self, *a, **k):
            raise sqlite3.OperationalError("database or disk is full")

    client = ScriptedClient(Script(thinking=[" step"] * 200, rate=50))
    apply_theme(QApplication.instance(), dark=False)
    w = MainWindow(FullDisk(tmp_path / "full.sqlite3"), client)
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.controller.sig_model, timeout=5000):
        w.controller.load_model("/models/DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf")
    type_and_send(qtbot, w, "a long answer")
    msg = w.chat.last_assistant()
    wait_idle(qtbot, w)  # the first save (after a second) fails: the answer stops
    assert client.generations[0].cancelled
    assert msg.error_card is not None and msg.error_card.message.text() == DISK_FULL
    assert not msg.thinking.live and msg.thinking.tokens > 0  # the text so far stays shown
    assert w.composer.send_button.isVisible()
    w.close()
    w.store.close()


def test_thinking_cut_short_for_the_answer_is_said_under_it(make_window, qtbot):
    client = ScriptedClient(Script(thinking=[" hmm"] * 1200))
    w = make_window(client=client, load=False)
    w.controller.n_ctx = 1024
    with qtbot.waitSignal(w.controller.sig_model, timeout=5000):
        w.controller.load_model("/models/DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf")
    type_and_send(qtbot, w, "hard")
    wait_idle(qtbot, w)
    msg = w.chat.last_assistant()
    assert msg.answer.toPlainText().strip() == "The answer is 4."
    assert "Thinking was cut short to leave room for the answer" in msg.note.text()
    assert client.params[-1]["max_tokens"] is None and client.params[-1]["answer_reserve"] == 512
    saved = w.store.messages(w.controller.conversation_id)[-1]
    assert saved.stats["thinking_ended_by"] == "context" and saved.status == "complete"
