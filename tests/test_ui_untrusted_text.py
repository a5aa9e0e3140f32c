"""Untrusted text on screen is shown, never followed: no image, style sheet or link it names
is ever opened (issue 20).

Model answers, model names, GGUF metadata, Hub file names, server replies and errors reach
real widgets offscreen. Each hostile path is a *tripwire*: a FIFO whose writer end is held
by a thread that records every open for reading (and lets it see end-of-file at once, so a
test that fails does not hang). `/dev/zero` itself is tried in a child process with a memory
limit, since reading it in this process would take the machine's memory.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6 import QtGui
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel, QWidget

from app.core.chat_store import ChatStore
from app.ui.safe_text import tip

# a hang (a FIFO opened by Qt holds the GIL) must end the run, not stall it
pytestmark = [pytest.mark.faults, pytest.mark.timeout(60, method="thread")]


WIRE_CHILD = r"""
import os, sys
path = sys.argv[1]
while True:
    fd = os.open(path, os.O_WRONLY)  # returns when a reader opens the FIFO
    if os.path.exists(path + ".done"):
        break
    with open(path + ".opens", "a") as f:
        f.write("x")
    os.close(fd)  # the reader sees end-of-file: a failing test fails, never hangs
"""


class Tripwire:
    """A FIFO that counts the times anything opened it for reading.

    Its writer is a child process: a thread would need the GIL, which the Qt call reading
    the FIFO may hold."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = str(path)
        Path(self.path + ".opens").touch()
        self._child = subprocess.Popen([sys.executable, "-c", WIRE_CHILD, self.path])

    @property
    def opens(self) -> int:
        return Path(self.path + ".opens").stat().st_size

    def close(self) -> None:
        Path(self.path + ".done").touch()
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)  # lets the writer see .done
        try:
            self._child.wait(5)
        finally:
            self._child.kill()
            os.close(fd)


@pytest.fixture
def wire(tmp_path):
    w = Tripwire(tmp_path / "wire")
    yield w
    w.close()


@pytest.fixture
def listener():
    """A local TCP port that records connections (a remote image must not be fetched)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def connected(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def settle(qtbot, widget: QWidget) -> None:
    """Lay out and paint everything, as the screen would."""
    widget.show()
    QApplication.processEvents()
    widget.grab()
    qtbot.wait(20)


def renders_markup(label: QLabel) -> bool:
    fmt = label.textFormat()
    return fmt == Qt.TextFormat.RichText or (
        fmt == Qt.TextFormat.AutoText and QtGui.Qt.mightBeRichText(label.text())
    )


def unsafe_labels(root: QWidget) -> list[str]:
    """Labels that would interpret an `<img>` tag in their text."""
    return [
        lab.text()
        for lab in root.findChildren(QLabel)
        if renders_markup(lab) and "<img" in lab.text().lower()
    ]


# -- answers ----------------------------------------------------------------------------
def hostile_answers(fifo: str, port: int) -> dict[str, tuple[str, str]]:
    """name: (answer, words that must be visible)."""
    return {
        "markdown image": (f"Look: ![chart]({fifo}) here.", "chart"),
        "markdown file url": (f"![passwd](file://{fifo})", "passwd"),
        "html img": (f'Before <img src="{fifo}" alt="pic"> after', "Before"),
        "html img sized": (f'<img src="file://{fifo}" width="40" height="40"> x', "x"),
        "table background": (f'<table background="{fifo}"><tr><td>cell</td></tr></table>', "cell"),
        "css background": (f'<p style="background-image: url({fifo})">styled</p>', "styled"),
        "style sheet": (f'<link rel="stylesheet" href="{fifo}">text after', "text after"),
        "remote image": (f"![remote](http://127.0.0.1:{port}/x.png)", "remote"),
    }


CASES = list(hostile_answers("f", 1))


@pytest.mark.parametrize("case", CASES)
def test_an_answer_never_loads_what_it_names(qtbot, wire, listener, case):
    from app.ui.assistant_message import AssistantMessageWidget

    answer, visible = hostile_answers(wire.path, listener.getsockname()[1])[case]
    w = AssistantMessageWidget(1, 1, "model")
    qtbot.addWidget(w)
    w.resize(700, 400)
    w.show_saved(answer, "", answer, "complete", {})
    settle(qtbot, w)
    assert wire.opens == 0, "the answer opened a file it names"
    assert not connected(listener), "the answer fetched a remote image"
    text = w.answer.toPlainText()
    assert visible in text
    assert "\ufffc" not in text  # no image object left to load later
    assert w.answer.document().resource(2, wire.path) is not None  # a blank, not the file
    assert wire.opens == 0


def test_images_become_words_and_a_remote_one_a_link_to_click(qtbot, wire, listener):
    from app.ui.message_widgets import AnswerView

    port = listener.getsockname()[1]
    view = AnswerView()
    qtbot.addWidget(view)
    view.resize(600, 200)
    view.set_markdown(f"![chart]({wire.path})\n\n![remote](https://example.invalid/{port}.png)")
    settle(qtbot, view)
    text = view.toPlainText()
    assert f"[image: chart — {wire.path}]" in text
    assert "[image: remote — https://example.invalid/" in text
    assert view.anchorAt(view.cursorRect(_cursor_at(view, "remote")).center()).startswith(
        "https://example.invalid/"
    )
    assert wire.opens == 0
    view.grab().save(str(Path(os.environ.get("PONDER_SHOTS", "/tmp")) / "untrusted_answer.png"))


def _cursor_at(view, word: str):
    cursor = view.document().find(word)
    cursor.clearSelection()
    return cursor


def test_a_made_up_copy_link_does_nothing(qtbot):
    from PySide6.QtCore import QUrl

    from app.ui.message_widgets import AnswerView

    view = AnswerView()
    qtbot.addWidget(view)
    view.set_markdown("[copy](copy:7) [x](copy:-1) [y](copy:abc) [z](file:///etc/passwd)")
    for href in ("copy:7", "copy:-1", "copy:abc", "file:///etc/passwd"):
        view._on_anchor(QUrl(href))  # raised IndexError / ValueError before


def test_streamed_text_is_shown_as_text(qtbot, wire):
    from app.ui.assistant_message import AssistantMessageWidget

    w = AssistantMessageWidget(1, 1, "model")
    qtbot.addWidget(w)
    w.begin()
    w.add_thinking(f'<img src="{wire.path}">', 1)
    w.add_answer(f'<img src="{wire.path}"> and ![a]({wire.path})', 1)
    settle(qtbot, w)
    w.finish("eos", False, {})
    settle(qtbot, w)
    assert wire.opens == 0
    assert "<img src=" in w.thinking.text()


# -- the window: a saved hostile chat, a hostile model name, a hostile server error ----
@pytest.fixture
def make_window(qtbot, tmp_path):
    from app.ui.main_window import MainWindow
    from app.ui.theme import apply_theme

    made = []

    def make(client, db=None, load=True):
        apply_theme(QApplication.instance(), dark=False)
        w = MainWindow(ChatStore(db or tmp_path / "chats.sqlite3"), client)
        qtbot.addWidget(w)
        w.show()
        made.append(w)
        if load:
            with qtbot.waitSignal(w.controller.sig_model, timeout=5000):
                w.controller.load_model("/models/model.gguf")
        return w

    yield make
    for w in made:
        w.close()
        w.store.close()


def test_reopening_a_saved_hostile_chat_opens_nothing(make_window, qtbot, wire, tmp_path):
    from app.ui.scripted_engine import ScriptedClient

    db = tmp_path / "hostile.sqlite3"
    store = ChatStore(db)
    conv = store.create_conversation(title=f'<img src="{wire.path}"> chat')
    store.add_message(conv.id, "user", f'<img src="{wire.path}">')
    store.add_message(
        conv.id,
        "assistant",
        f"![x]({wire.path}) and <img src='{wire.path}'>",
        thinking=f"<img src='{wire.path}'>",
        raw="raw",
        model=f'<img src="{wire.path}">',
        status="error",
        stats={"error": {"kind": "internal", "message": f'<img src="{wire.path}">'}},
    )
    store.close()
    w = make_window(ScriptedClient(), db=db, load=False)
    w.sidebar.list.setCurrentRow(0)
    qtbot.waitUntil(lambda: len(w.chat.messages) == 2, timeout=5000)
    settle(qtbot, w)
    w.sidebar.show_undo(conv.id, f'<img src="{wire.path}">')
    settle(qtbot, w)
    assert wire.opens == 0
    assert unsafe_labels(w) == []
    answer = w.chat.last_assistant()
    assert "[image: x" in answer.answer.toPlainText()
    assert answer.error_card.message.text() == f'<img src="{wire.path}">'


def test_a_hostile_model_name_is_shown_literally_after_load(make_window, qtbot, wire):
    from app.ui.scripted_engine import ScriptedClient

    name = f'<img src="{wire.path}">Evil'
    w = make_window(ScriptedClient(name=name), load=False)
    with qtbot.waitSignal(w.controller.sig_model, timeout=5000):
        w.controller.load_model("/models/x.gguf", name)  # as the model list names it
    settle(qtbot, w)
    w.controller.new_conversation()
    settle(qtbot, w)
    assert wire.opens == 0
    assert unsafe_labels(w) == []
    assert name in w.model_label.text()
    assert name in w.chat.empty.text.text()


def test_a_hostile_server_error_after_load_is_shown_literally(make_window, qtbot, wire):
    from app.ui.scripted_engine import Script, ScriptedClient

    message = f'<img src="{wire.path}"> the server said no'
    w = make_window(ScriptedClient(Script(load_error=("bad_model", message))), load=False)
    with qtbot.waitSignal(w.controller.sig_model, timeout=5000):
        w.controller.load_model("/models/model.gguf")
    settle(qtbot, w)
    assert wire.opens == 0
    assert w.chat.banner.message.text() == message
    assert unsafe_labels(w) == []


# -- dialogs and the wizard ---------------------------------------------------------------
def test_dialogs_and_wizard_pages_show_hostile_text_literally(qtbot, wire, tmp_path):
    from app.core import model_choice
    from app.core.downloads import DownloadError, OfflineError
    from app.core.remote import ConnectionReport
    from app.ui.connect_dialog import ConnectDialog
    from app.ui.import_model import ImportDialog
    from app.ui.wizard.pages import DownloadPage, MachinePage, ReadyPage

    evil = f'<img src="{wire.path}">'
    roots: list[QWidget] = []

    imp = ImportDialog(f"/models/{evil}.gguf")
    imp._fail(ValueError(f"{evil} is not a GGUF file"))
    roots.append(imp)

    conn = ConnectDialog(list_path=tmp_path / "remote.json")
    conn._on_report(ConnectionReport(False, f"{evil} refused", detail=f"{evil} detail"))
    assert "<img" not in conn.result_label.toolTip()
    roots.append(conn)

    machine = MachinePage()
    machine.show_profile(
        object(), [model_choice.Fact(evil, evil, evil)], f"{evil} summary", [f"{evil} warning"]
    )
    roots.append(machine)

    download = DownloadPage(model_choice.DownloadSettings())
    download._on_failed(OfflineError(f"{evil} offline"))
    roots.append(download)
    download2 = DownloadPage(model_choice.DownloadSettings())
    download2._on_failed(DownloadError(f"{evil} stopped"))
    roots.append(download2)

    ready = ReadyPage()
    ready.done(True, evil)
    roots.append(ready)
    ready2 = ReadyPage()
    ready2.done(False, evil, f"{evil} failed")
    roots.append(ready2)

    for root in roots:
        qtbot.addWidget(root)
        settle(qtbot, root)
        assert unsafe_labels(root) == [], type(root).__name__
    assert wire.opens == 0
    assert evil in imp.title.text() + imp.plan_label.text()
    assert f"{evil} refused" in conn.result_label.text()
    assert "&lt;img" in download.error.text() and "<b>" in download.error.text()


def test_tooltips_show_hostile_text_literally():
    evil = '<img src="/dev/zero"> name'
    assert tip("plain words") == "plain words"
    shown = tip(evil)
    assert "<img" not in shown and "&lt;img" in shown
    assert QtGui.Qt.mightBeRichText(shown)  # rich, so the escapes read as the literal text


def test_model_manager_tooltips_and_status_are_literal(qtbot, wire, tmp_path):
    from app.core.model_discovery import FoundModel
    from app.ui.model_manager import ModelManager

    evil = f'<img src="{wire.path}">'
    fields = FoundModel.__dataclass_fields__
    values = {
        "path": tmp_path / f"{evil}.gguf",
        "name": evil,
        "format": "gguf",
        "size_bytes": 1,
        "source": "added",
    }
    kwargs = {k: v for k, v in values.items() if k in fields}
    if "problem" in fields:
        kwargs["problem"] = f"{evil} broken"
    model = FoundModel(**kwargs)
    m = ModelManager(discover=lambda **_: [model], remote_list=tmp_path / "remote.json")
    qtbot.addWidget(m)
    m._show([model])
    m._say(f"Deleted {evil}")
    settle(qtbot, m)
    for col in range(m.table.columnCount()):
        assert "<img" not in m.table.item(0, col).toolTip()
    assert unsafe_labels(m) == []
    assert wire.opens == 0


# -- /dev/zero for real, in a child with a memory limit ---------------------------------
CHILD = r"""
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtWidgets import QApplication
app = QApplication([])
from app.ui.assistant_message import AssistantMessageWidget
w = AssistantMessageWidget(1, 1, '<img src="/dev/zero">')
w.resize(600, 300)
w.show_saved("![zero](/dev/zero) <img src='/dev/zero'>", "", "", "error",
             {"error": {"kind": "internal", "message": '<img src="/dev/zero">'}})
w.show()
app.processEvents()
w.grab()
print("ok", w.answer.toPlainText().strip())
"""


def test_dev_zero_in_an_answer_and_labels_is_never_read(tmp_path):
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("ok") and "[image: zero — /dev/zero]" in done.stdout
    assert time.monotonic() - t0 < 30


# -- huge text: shown softened and capped, kept whole ------------------------------------
def timed(f) -> float:
    t0 = time.perf_counter()
    f()
    QApplication.processEvents()
    return time.perf_counter() - t0


def spaced_text(n: int) -> str:
    words = ("alpha", "beta", "integral", "x", "delta")
    return " ".join(words[i % 5] for i in range(n // 5))[:n]


def test_a_1_mb_message_and_answer_lay_out_in_a_fraction_of_a_second(qtbot):
    """Before: 3.9 s to show the message and 2.1 s per resize; the answer 2.4 s and 2.7 s."""
    from app.ui.message_widgets import AnswerView, UserMessageWidget

    text = spaced_text(1_000_000)
    user = UserMessageWidget(1, 1, text)
    qtbot.addWidget(user)
    user.resize(800, 400)
    assert timed(lambda: (user.set_max_width(640), user.show(), user.grab())) < 1.5
    assert timed(lambda: (user.resize(700, 400), user.set_max_width(560), user.grab())) < 1.0
    assert user.text == text and "Edit shows all of it" in user.label.text()
    user.begin_edit()
    assert user.editor.toPlainText() == text
    view = AnswerView()
    qtbot.addWidget(view)
    view.resize(800, 400)
    assert timed(lambda: (view.set_markdown(text), view.show(), view.grab())) < 1.5
    assert timed(lambda: (view.resize(700, 400), view.grab())) < 1.0
    assert "Copy answer copies all of it" in view.toPlainText()


def test_a_400_kb_line_without_spaces_is_shown_and_kept_whole(qtbot):
    """Before: quadratic layout, about 45 s for the answer (2.9 s at 100 KB)."""
    from app.ui.assistant_message import AssistantMessageWidget

    line = "0123456789abcdef" * 25_000
    w = AssistantMessageWidget(1, 1, "model")
    qtbot.addWidget(w)
    w.resize(700, 500)
    took = timed(lambda: (w.show_saved(line, line, line, "complete", {}), w.show(), w.grab()))
    assert took < 3.0
    assert w.answer_text() == line and w.thinking_text() == line
    assert "400 KB" in w.answer.toPlainText()


def test_streaming_a_line_without_spaces_costs_no_more_than_prose(qtbot):
    """Before: each append laid the whole unbroken line out again, in quadratic time."""
    from app.ui.message_widgets import AnswerView
    from app.ui.safe_text import unsoften

    def stream(chunk: str) -> tuple[float, AnswerView]:
        view = AnswerView()
        qtbot.addWidget(view)
        view.resize(700, 300)
        view.show()

        def run() -> None:
            for _ in range(60):
                view.append_text(chunk)
                QApplication.processEvents()

        return timed(run), view

    prose, _ = stream("word " * 200)
    unbroken, view = stream("x" * 1000)
    assert unbroken < 2 * prose + 0.5
    assert unsoften(view.toPlainText()).replace("\n", "") == "x" * 60_000
