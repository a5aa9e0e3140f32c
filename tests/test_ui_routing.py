"""Auto routing in the real window, offscreen, with two scripted models through the real engine
process: the "1.5B" answers "The answer is 4.", the "14B" answers "The answer is 5."; and a lone
scripted model with Qwen3's real template (a thinking switch) answering routine prompts without
thinking."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.core.chat_store import ChatStore
from app.core.history import roles_alternate
from app.core.model_discovery import read_model
from app.ui.assistant_message import AssistantMessageWidget
from app.ui.main_window import MainWindow
from app.ui.theme import apply_theme
from scripted import ANSWER5_TEXT, ANSWER_TEXT, QWEN3_TEMPLATE, THINK_TEXT, write_scripted_gguf

pytest.importorskip("llama_cpp")

WAIT_MS = 60_000


@pytest.fixture
def auto_window(qtbot, tmp_path):
    from app.core.engine import EngineClient

    small = write_scripted_gguf(tmp_path / "Scripted-R1-1.5B.gguf", "answer")
    big = write_scripted_gguf(tmp_path / "Scripted-R1-14B.gguf", "answer5")
    apply_theme(QApplication.instance(), dark=False)
    w = MainWindow(ChatStore(tmp_path / "chats.sqlite3"), EngineClient(load_timeout_s=120),
                   n_ctx=4096)  # fmt: skip
    qtbot.addWidget(w)
    w.discovery = lambda: [read_model(small, "added"), read_model(big, "added")]
    w.show()
    task = w.refresh_auto()
    qtbot.waitUntil(lambda: w.composer.model_choice.isVisible(), timeout=WAIT_MS)
    assert task is not None
    yield w
    w.close()
    w.store.close()


def ask(qtbot, w: MainWindow, text: str) -> AssistantMessageWidget:
    qtbot.keyClicks(w.composer.input, text)
    qtbot.keyClick(w.composer.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not w.controller.busy, timeout=WAIT_MS)
    msg = w.chat.last_assistant()
    assert msg is not None
    return msg


def test_auto_sends_routine_to_the_small_model_complex_to_the_big_and_think_harder_keeps_both(
    auto_window, qtbot
):
    w = auto_window
    assert "Scripted-R1-1.5B" in w.composer.model_choice.toolTip()
    assert w.composer.model_choice.itemText(1) == "Auto: small or big"
    w.composer.model_choice.setCurrentIndex(1)  # Auto
    assert w.controller.auto

    routine = ask(qtbot, w, "Translate 'good morning' into French.")
    assert routine.answer.toPlainText().strip() == ANSWER_TEXT
    assert routine.route_note.text().startswith("Answered by Scripted-R1-1.5B (small model)")
    assert "routine" in routine.route_note.text()
    assert routine.think_harder_button.isVisible()

    hard = ask(qtbot, w, "Prove that the square root of 3 is irrational, step by step.")
    assert hard.answer.toPlainText().strip() == ANSWER5_TEXT
    assert hard.route_note.text().startswith("Answered by Scripted-R1-14B (big model)")
    assert "complex" in hard.route_note.text() and not hard.think_harder_button.isVisible()
    assert not routine.think_harder_button.isVisible()  # only the last answer offers it
    # the status bar names the big model as the model list does (not by its GGUF header)
    assert w.model_label.text().startswith("Scripted-R1-14B ·")

    small = ask(qtbot, w, "hi! thanks for that")
    assert small.answer.toPlainText().strip() == ANSWER_TEXT
    qtbot.mouseClick(small.think_harder_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.controller.busy, timeout=WAIT_MS)
    bigger = w.chat.last_assistant()
    assert bigger is not small and bigger.answer.toPlainText().strip() == ANSWER5_TEXT
    assert "Think harder" in bigger.route_note.text() and small.isVisible()
    assert small.answer.toPlainText().strip() == ANSWER_TEXT  # both kept, one under the other

    cid = w.controller.conversation_id
    messages = w.store.messages(cid)
    assert [m.role for m in messages] == ["user", "assistant"] * 3 + ["assistant"]
    assert [m.content.strip() for m in messages[-2:]] == [ANSWER_TEXT, ANSWER5_TEXT]
    assert [m.model for m in messages[-2:]] == ["Scripted-R1-1.5B", "Scripted-R1-14B"]
    history = w.store.history_for_model(cid)
    assert roles_alternate(history) and history[-1]["content"].strip() == ANSWER5_TEXT

    # reopened, the answers still say which model answered and why
    w.controller.new_conversation()
    w.controller.open_conversation(cid)
    notes = [m.route_note.text() for m in w.chat.messages if isinstance(m, AssistantMessageWidget)]
    assert len(notes) == 4 and all(n.startswith("Answered by") for n in notes)


@pytest.fixture
def qwen3_window(qtbot, tmp_path):
    """One scripted model with Qwen3's real chat template (a thinking switch), nothing else."""
    from app.core.engine import EngineClient

    model = write_scripted_gguf(tmp_path / "Scripted-Qwen3-8B.gguf", "qwen3", QWEN3_TEMPLATE)
    apply_theme(QApplication.instance(), dark=False)
    w = MainWindow(ChatStore(tmp_path / "chats.sqlite3"), EngineClient(load_timeout_s=120),
                   n_ctx=4096)  # fmt: skip
    qtbot.addWidget(w)
    w.discovery = lambda: [read_model(model, "added")]
    w.show()
    w.refresh_auto()
    qtbot.waitUntil(lambda: w.composer.model_choice.isVisible(), timeout=WAIT_MS)
    yield w
    w.close()
    w.store.close()


def test_auto_with_a_thinking_switch_answers_routine_prompts_without_thinking(qwen3_window, qtbot):
    w = qwen3_window
    assert "Scripted-Qwen3-8B without thinking for routine prompts" in (
        w.composer.model_choice.toolTip()
    )
    assert w.composer.model_choice.itemText(1) == "Auto: think when needed"
    w.composer.model_choice.setCurrentIndex(1)  # Auto
    routine = ask(qtbot, w, "Translate 'good morning' into French.")
    assert routine.answer.toPlainText().strip() == ANSWER_TEXT
    assert routine.thinking_text().strip() == "" and not routine.thinking.isVisible()
    assert routine.route_note.text().startswith("Answered by Scripted-Qwen3-8B without thinking")
    assert routine.think_harder_button.isVisible()
    loads = w.controller.load_job  # the one load, before the first answer

    qtbot.mouseClick(routine.think_harder_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.controller.busy, timeout=WAIT_MS)
    harder = w.chat.last_assistant()
    assert harder is not routine and harder.thinking_text().strip() == THINK_TEXT
    assert harder.answer.toPlainText().strip() == ANSWER_TEXT
    assert "with thinking. Think harder" in harder.route_note.text()

    hard = ask(qtbot, w, "Prove that the square root of 3 is irrational, step by step.")
    assert hard.thinking_text().strip() == THINK_TEXT
    assert "with thinking. Auto: complex" in hard.route_note.text()
    assert w.controller.load_job == loads  # the same model all along: no reload

    messages = [m for m in w.store.messages(w.controller.conversation_id) if m.role == "assistant"]
    assert [m.settings.get("thinking") for m in messages] == [False, None, None]
    assert [bool(m.thinking.strip()) for m in messages] == [False, True, True]
