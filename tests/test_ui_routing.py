"""Auto routing in the real window, offscreen, with two scripted models through the real engine
process: the "1.5B" answers "The answer is 4.", the "14B" answers "The answer is 5."; and a lone
scripted model with Qwen3's real template (a thinking switch) answering routine prompts without
thinking. Regenerate and Edit on Auto answers run on the scripted stand-in engine
(app/ui/scripted_engine.py), which records what each answer was asked with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.core.chat_store import ChatStore
from app.core.history import roles_alternate
from app.core.model_discovery import read_model
from app.ui.assistant_message import AssistantMessageWidget
from app.ui.main_window import MainWindow
from app.ui.scripted_engine import ScriptedClient
from app.ui.theme import apply_theme
from scripted import ANSWER5_TEXT, ANSWER_TEXT, QWEN3_TEMPLATE, THINK_TEXT, write_scripted_gguf
from test_routing_switch import BIG, COMPLEX, QWEN3, ROUTINE, SMALL, Found

WAIT_MS = 60_000


@pytest.fixture
def open_auto(qtbot, tmp_path):
    """The window on `client` once Auto is offered over `models` (what discovery finds)."""
    made: list[MainWindow] = []

    def open_window(client: Any, *models: Any, n_ctx: int = 4096) -> MainWindow:
        apply_theme(QApplication.instance(), dark=False)
        w = MainWindow(ChatStore(tmp_path / "chats.sqlite3"), client, n_ctx=n_ctx)
        qtbot.addWidget(w)
        made.append(w)
        w.discovery = lambda: list(models)
        w.show()
        assert w.refresh_auto() is not None
        qtbot.waitUntil(lambda: w.composer.model_choice.isVisible(), timeout=WAIT_MS)
        return w

    yield open_window
    for w in made:
        w.close()
        w.store.close()


@pytest.fixture
def auto_window(open_auto, tmp_path):
    pytest.importorskip("llama_cpp")
    from app.core.engine import EngineClient

    small = write_scripted_gguf(tmp_path / "Scripted-R1-1.5B.gguf", "answer")
    big = write_scripted_gguf(tmp_path / "Scripted-R1-14B.gguf", "answer5")
    return open_auto(EngineClient(load_timeout_s=120), read_model(small, "added"),
                     read_model(big, "added"))  # fmt: skip


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
def qwen3_window(open_auto, tmp_path):
    """One scripted model with Qwen3's real chat template (a thinking switch), nothing else."""
    pytest.importorskip("llama_cpp")
    from app.core.engine import EngineClient

    model = write_scripted_gguf(tmp_path / "Scripted-Qwen3-8B.gguf", "qwen3", QWEN3_TEMPLATE)
    return open_auto(EngineClient(load_timeout_s=120), read_model(model, "added"))


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


# -- Regenerate and Edit on Auto answers, on the scripted stand-in engine ---------------------
@pytest.fixture
def scripted_auto(open_auto):
    """The window on a ScriptedClient with Auto chosen over `models` (found models, no files:
    the stand-in loads any path, and plays its answer only when asked without thinking)."""

    def make(*models: Found) -> tuple[MainWindow, ScriptedClient]:
        client = ScriptedClient()
        w = open_auto(client, *models)
        w.composer.model_choice.setCurrentIndex(1)  # Auto
        assert w.controller.auto
        return w, client

    return make


def regenerate(qtbot, w: MainWindow, msg: AssistantMessageWidget) -> AssistantMessageWidget:
    qtbot.mouseClick(msg.regenerate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.controller.busy, timeout=WAIT_MS)
    again = w.chat.last_assistant()
    assert again is not None and again is not msg
    return again


def edit(qtbot, w: MainWindow, index: int, text: str) -> AssistantMessageWidget:
    """Edit the `index`-th user turn into `text` and send it."""
    user = w.chat.user_widgets()[index]
    qtbot.mouseClick(user.edit_button, Qt.MouseButton.LeftButton)
    user.editor.setPlainText(text)
    qtbot.mouseClick(user.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.controller.busy, timeout=WAIT_MS)
    msg = w.chat.last_assistant()
    assert msg is not None
    return msg


SCRIPTED_ANSWER = "The answer is **4**."  # the stand-in's default script


def test_regenerate_answers_an_auto_answer_without_thinking_again_without_thinking(
    scripted_auto, qtbot
):
    w, client = scripted_auto(Found(QWEN3.name, Path(QWEN3.path), thinking_switch=True))
    routine = ask(qtbot, w, ROUTINE)
    note = routine.route_note.text()
    assert note.startswith("Answered by Qwen3-8B without thinking. Auto: routine")
    assert client.params[-1]["thinking"] is False and routine.thinking_text() == ""

    again = regenerate(qtbot, w, routine)
    assert len(client.params) == 2 and client.params[-1]["thinking"] is False
    assert again.thinking_text() == "" and not again.thinking.isVisible()
    assert again.route_note.text() == note and again.think_harder_button.isVisible()
    assert client.loads == [QWEN3.path]  # the same model: no reload
    user, answer = w.store.messages(w.controller.conversation_id)
    assert (user.content, answer.content, answer.thinking) == (ROUTINE, SCRIPTED_ANSWER, "")
    assert answer.settings["thinking"] is False and answer.settings["route"]["note"] == note
    assert answer.stats["thinking_tokens"] == 0 and answer.model == QWEN3.name


def test_an_edited_prompt_in_auto_goes_to_the_model_its_words_call_for(scripted_auto, qtbot):
    w, client = scripted_auto(Found(SMALL.name, Path(SMALL.path)), Found(BIG.name, Path(BIG.path)))
    routine = ask(qtbot, w, ROUTINE)
    assert routine.route_note.text().startswith("Answered by R1 1.5B (small model)")
    assert client.loads == [SMALL.path]

    hard = edit(qtbot, w, 0, COMPLEX)
    assert client.loads == [SMALL.path, BIG.path]  # the big model loaded before it answered
    assert hard.route_note.text().startswith("Answered by R1 14B (big model). Auto: complex")
    assert not hard.think_harder_button.isVisible()
    assert client.calls[-1] == [{"role": "user", "content": COMPLEX}]
    user, answer = w.store.messages(w.controller.conversation_id)
    assert (user.content, answer.model, answer.settings["route"]["route"]) == (
        COMPLEX, BIG.name, "big")  # fmt: skip
    assert w.model_label.text().startswith("R1 14B ·")

    quick = edit(qtbot, w, 0, ROUTINE)
    assert client.loads[-1] == SMALL.path and quick.think_harder_button.isVisible()
    assert quick.route_note.text().startswith("Answered by R1 1.5B (small model). Auto: routine")
    note = quick.route_note.text()

    # the small model's answer regenerated: the same model, the same note, no reload
    again = regenerate(qtbot, w, quick)
    assert again.route_note.text() == note and again.think_harder_button.isVisible()
    assert len(client.loads) == 3 and "thinking" not in client.params[-1]
    user, answer = w.store.messages(w.controller.conversation_id)
    assert (user.content, answer.model, answer.settings["route"]["note"]) == (
        ROUTINE, SMALL.name, note)  # fmt: skip


def test_an_edited_prompt_on_a_switch_model_is_answered_without_thinking_when_routine(
    scripted_auto, qtbot
):
    w, client = scripted_auto(Found(QWEN3.name, Path(QWEN3.path), thinking_switch=True))
    hard = ask(qtbot, w, COMPLEX)
    assert "thinking" not in client.params[-1] and hard.thinking_text().strip()

    quick = edit(qtbot, w, 0, ROUTINE)
    assert client.params[-1]["thinking"] is False and quick.thinking_text() == ""
    assert quick.route_note.text().startswith("Answered by Qwen3-8B without thinking")
    assert quick.think_harder_button.isVisible() and client.loads == [QWEN3.path]
    user, answer = w.store.messages(w.controller.conversation_id)
    assert user.content == ROUTINE and answer.settings["thinking"] is False

    hard = edit(qtbot, w, 0, COMPLEX)
    assert "thinking" not in client.params[-1] and hard.thinking_text().strip()
    assert hard.route_note.text().startswith("Answered by Qwen3-8B with thinking. Auto: complex")
