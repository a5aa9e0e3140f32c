"""A model that does not reason gets no thinking panel (issue #18), with the real engine.

Scripted GGUF models (tests/scripted.py) run through the engine process: `no_think` answers
with no think tags at all (as Gemma does), `blank_think` writes an empty think block
(whitespace only, as Qwen3 does with thinking off) before its answer, and `blank_never` opens
a think block and writes only newlines until the length limit. None of them has any
thinking to show: no "Thinking… 0 s" panel while the answer streams, none after it, none
when the chat is opened again from the store, and never "Ended while thinking".
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtWidgets import QApplication

from app.core.chat_store import ChatStore
from app.core.generation_settings import GenerationSettings
from app.ui.main_window import MainWindow
from app.ui.theme import apply_theme
from scripted import ANSWER_TEXT, TEMPLATE_PLAIN, THINK_TEXT, write_scripted_gguf

pytest.importorskip("llama_cpp")

LOAD_MS = 60_000


@pytest.fixture(scope="module")
def plain_models(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("non-reasoning")
    return {
        kind: write_scripted_gguf(folder / f"{kind}.gguf", kind, TEMPLATE_PLAIN)
        for kind in ("no_think", "blank_think", "blank_never")
    }


class Recorder(QObject):
    """The thinking panel as the stream's handlers left it, after each event (GUI thread)."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__()
        self.window = window
        self.looks: list[tuple[str, bool, str]] = []  # (event, panel visible, its header)

    def _look(self, event: str) -> None:
        msg = self.window.chat.last_assistant()
        if msg is not None:
            panel = msg.thinking
            self.looks.append((event, panel.isVisibleTo(self.window), panel.header.text()))

    @Slot(int, int, bool)
    def started(self, *_args: object) -> None:
        self._look("started")

    @Slot(int, object)
    def delta(self, *_args: object) -> None:
        self._look("delta")

    @Slot(int, object)
    def finished(self, *_args: object) -> None:
        self._look("finished")


def _window(qtbot, db) -> MainWindow:
    from app.core.engine import EngineClient

    apply_theme(QApplication.instance(), dark=False)
    w = MainWindow(ChatStore(db), EngineClient(load_timeout_s=120), n_ctx=4096)
    qtbot.addWidget(w)
    w.show()
    return w


def _close(w: MainWindow) -> None:
    w.close()
    w.store.close()


@pytest.mark.parametrize(
    ("kind", "max_tokens", "answer", "reason"),
    [
        ("no_think", 200, ANSWER_TEXT, "eos"),
        ("blank_think", 200, ANSWER_TEXT, "eos"),
        ("blank_never", 24, "", "length"),
    ],
)
def test_a_model_with_no_thinking_shows_no_thinking_panel_live_or_reopened(
    qtbot, tmp_path, plain_models, kind, max_tokens, answer, reason
):
    db = tmp_path / "chats.sqlite3"
    w = _window(qtbot, db)
    with qtbot.waitSignal(w.controller.sig_model, timeout=LOAD_MS) as loaded:
        w.controller.load_model(str(plain_models[kind]))
    assert loaded.args[0], "the model did not load"
    w.controller.set_settings(GenerationSettings(max_tokens=max_tokens))

    seen = Recorder(w)  # connected after the controller: its handler has run first
    worker = w.bridge.worker
    worker.sig_started.connect(seen.started)
    worker.sig_delta.connect(seen.delta)
    worker.sig_finished.connect(seen.finished)
    qtbot.keyClicks(w.composer.input, "What is 2+2?")
    qtbot.keyClick(w.composer.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not w.controller.busy, timeout=30_000)

    msg = w.chat.last_assistant()
    events = [e for e, _, _ in seen.looks]
    assert events[0] == "started" and events[-1] == "finished" and "delta" in events
    assert [(e, h) for e, shown, h in seen.looks if shown] == []  # never shown, at any point
    assert not msg.thinking.isVisibleTo(w)
    assert "Ended while thinking" not in msg.thinking.header.text()
    assert not msg.copy_thinking_button.isVisibleTo(w)
    assert msg.answer.toPlainText().strip() == answer
    saved = w.store.messages(w.controller.conversation_id)[-1]
    assert saved.stats["stop_reason"] == reason and saved.thinking.strip() == ""
    assert saved.content.strip() == answer
    chat = w.controller.conversation_id
    _close(w)

    w = _window(qtbot, db)  # the same chat from the store, after a restart
    w.controller.open_conversation(chat)
    _, again = w.chat.messages
    assert not again.thinking.isVisibleTo(w)
    assert not again.copy_thinking_button.isVisibleTo(w)
    assert again.answer_text().strip() == answer
    _close(w)


def test_a_reasoning_model_whose_template_does_not_open_the_thinking_still_shows_it(
    qtbot, tmp_path, scripted_models
):
    """The contrast: `<think>` written by the model itself opens the panel, live."""
    w = _window(qtbot, tmp_path / "chats.sqlite3")
    with qtbot.waitSignal(w.controller.sig_model, timeout=LOAD_MS):
        w.controller.load_model(str(scripted_models.plain))
    seen = Recorder(w)
    w.bridge.worker.sig_delta.connect(seen.delta)
    qtbot.keyClicks(w.composer.input, "What is 2+2?")
    qtbot.keyClick(w.composer.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not w.controller.busy, timeout=30_000)
    msg = w.chat.last_assistant()
    # shown while the answer streams (a fast model's whole answer can come in one batch,
    # whose handlers already end the thinking: "Thought for …" then, never "Thinking…")
    assert any(
        event == "delta" and shown and h.startswith(("Thinking…", "Thought for"))
        for event, shown, h in seen.looks
    )
    assert msg.thinking.isVisibleTo(w) and msg.thinking.text().strip() == THINK_TEXT
    assert msg.thinking.header.text().startswith("Thought for")
    assert msg.answer.toPlainText().strip() == ANSWER_TEXT
    _close(w)
