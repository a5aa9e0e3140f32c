"""Model → Compare… (issue 17): two scripted quants through the window's own engine, cancelled
after the first answer and resumed, results (accuracy, agreement, side by side, thinking,
plot) and the Markdown and CSV exports; rendered to PNG when PONDER_COMPARE_SHOTS is set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.core.chat_store import ChatStore
from app.core.compare import CompareStore
from app.core.engine import EngineClient
from app.core.engine_share import WINDOW
from app.core.model_discovery import FoundModel
from app.ui.compare_dialog import CompareDialog
from app.ui.main_window import MainWindow
from app.ui.theme import apply_theme
from scripted import write_scripted_gguf

SHOTS = os.environ.get("PONDER_COMPARE_SHOTS")


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("PONDER_CONFIG_DIR", str(tmp_path / "config"))  # no saved servers
    apply_theme(QApplication.instance(), dark=False)
    # thinks ~3,000 tokens (about a second) until the room kept for the answer, then "4"
    right = write_scripted_gguf(tmp_path / "r1-Q8_0.gguf", "never_closes")
    wrong = write_scripted_gguf(tmp_path / "r1-Q4_K_M.gguf", "answer5")
    w = MainWindow(ChatStore(tmp_path / "chats.sqlite3"), EngineClient(load_timeout_s=60))
    w.discovery = lambda: [
        FoundModel(f"<b>{p.stem}</b>", p, p.stat().st_size, "added") for p in (right, wrong)
    ]  # names that look like HTML are shown as written
    qtbot.addWidget(w)
    yield w
    w.close()


def test_compare_dialog_cancel_resume_results_and_exports(qtbot, window, tmp_path):
    problems = tmp_path / "problems.jsonl"
    problems.write_text('{"prompt": "What is 2 + 2?", "expected": "4"}\n{"prompt": "Hi!"}\n')
    assert window.compare_action.text() == "&Compare…"
    dialog: CompareDialog = window.open_compare_dialog()
    qtbot.addWidget(dialog)
    assert not dialog.start_button.isEnabled()  # no model chosen yet
    labels = [dialog.model_list.item(i).text() for i in range(dialog.model_list.count())]
    assert labels == ["<b>r1-Q8_0</b>", "<b>r1-Q4_K_M</b>"]
    for i in range(2):
        dialog.model_list.item(i).setCheckState(Qt.CheckState.Checked)
    dialog.set_problem_file(str(problems))
    assert dialog.start_button.isEnabled() and dialog.status.textFormat() == Qt.TextFormat.PlainText

    share = window.bridge.worker.share

    def window_answers(progress):  # on the comparison's thread: the chat takes the engine
        if progress.phase == "answered" and progress.done == 1:
            share.acquire(WINDOW)

    dialog.start()
    dialog.worker_thread.sig_progress.connect(window_answers, Qt.ConnectionType.DirectConnection)
    qtbot.waitUntil(lambda: share.holder == WINDOW, timeout=60_000)
    assert dialog.running  # the comparison waits for the window's answer, never cancels it
    dialog.cancel_button.click()
    share.release(WINDOW)
    qtbot.waitUntil(lambda: not dialog.running, timeout=60_000)
    qtbot.waitUntil(lambda: dialog.status.text().startswith("Stopped"), timeout=5_000)
    assert dialog.status.text().startswith("Stopped after 1 of 8 answers"), dialog.status.text()
    assert dialog.resume_button.isEnabled()
    store = CompareStore(window.store.path)
    assert len(store.done_keys(dialog.run_id)) == 1
    if SHOTS:
        save(dialog, "compare-stopped.png")

    dialog.resume()
    qtbot.waitUntil(lambda: not dialog.running, timeout=60_000)
    qtbot.waitUntil(lambda: dialog.status.text().startswith("Done"), timeout=5_000)
    assert dialog.status.text() == "Done: 8 of 8 answers." and dialog.progress.value() == 8
    keys = [r.key for r in store.results(dialog.run_id)]
    assert len(keys) == len(set(keys)) == 8  # nothing answered twice

    table = dialog.results.table
    cells = [[table.item(r, c).text() for c in range(3)] for r in range(2)]
    assert cells == [["<b>r1-Q8_0</b>", "100% (2/2)", "reference"],
                     ["<b>r1-Q4_K_M</b>", "0% (0/2)", "0%"]]  # fmt: skip
    assert [label for label, _, _ in dialog.results.plot.points] == labels
    tree = dialog.results.tree
    assert tree.topLevelItemCount() == 2
    first = tree.topLevelItem(0)
    assert first.text(1) == "4" and first.text(2) == "4 ✓  4 ✓" and first.text(3) == "5 ✗  5 ✗"
    answer = first.child(0)
    assert answer.text(3) == "The answer is 5."
    thinking = answer.child(0)  # expandable under its answer
    assert thinking.text(0) == "Thinking 1" and "6 tokens" in thinking.text(3)
    dialog.results._show_cell(thinking, 2)
    assert dialog.results.detail.toPlainText().startswith("Two plus two makes four. Hmm, let")
    assert answer.child(0).data(2, Qt.ItemDataRole.UserRole + 1).count("Hmm,") > 100

    md = dialog.export(tmp_path / "c.md", "md").read_text()
    assert "| <b>r1-Q4_K_M</b> | 0% (0/2) | 0% |" in md and "## Answers" in md
    rows = dialog.export(tmp_path / "c.csv", "csv").read_text().strip().splitlines()
    assert len(rows) == 9 and rows[0].startswith("model,problem,id,level,attempt")
    if SHOTS:
        dialog.results.setCurrentIndex(0)
        save(dialog, "compare-models.png")
        dialog.results.setCurrentIndex(1)
        tree.expandItem(first)
        save(dialog, "compare-problems.png")
    dialog.close()
    assert window.bridge.worker.share.holder is None  # the window's engine is free again
    store.close()


def save(dialog: CompareDialog, name: str) -> None:
    assert SHOTS
    QApplication.processEvents()
    dialog.grab().save(str(Path(SHOTS) / name))


def test_closing_the_window_stops_a_running_comparison_first(qtbot, window):
    dialog: CompareDialog = window.open_compare_dialog()
    for i in range(2):
        dialog.model_list.item(i).setCheckState(Qt.CheckState.Checked)
    dialog.start()  # the built-in set: 172 answers, far from done when the window closes
    qtbot.waitUntil(lambda: dialog.progress.value() >= 1, timeout=60_000)
    window.close()
    assert not dialog.running
    store = CompareStore(window.store.path)
    record = store.run(dialog.run_id)
    assert record is not None and record.status == "cancelled"
    assert 1 <= len(store.done_keys(dialog.run_id)) < record.total
    store.close()
