"""The "Connect to a server" dialog offscreen, against a local replay server: the key is
masked, Test connection reports in words (off the GUI thread) and fills the model list,
Save keeps the entry in the list and the key in the keyring; plus the saved-entry core."""

from __future__ import annotations

import json

import pytest
from PySide6.QtWidgets import QLineEdit

from app.core import remote
from app.ui.connect_dialog import ConnectDialog
from test_openai_sse_replay import KEY, ReplayServer


@pytest.fixture
def server():
    s = ReplayServer(models=["deepseek-r1", "qwq-32b"])
    yield s
    s.close()


def make_dialog(qtbot, tmp_path, **kw) -> ConnectDialog:
    d = ConnectDialog(list_path=tmp_path / "remote_models.json", **kw)
    qtbot.addWidget(d)
    d.show()
    return d


def test_test_connection_fills_the_models_and_save_keeps_the_key_in_the_keyring(
    qtbot, tmp_path, server, memory_keyring
):
    server.need_key = True
    d = make_dialog(qtbot, tmp_path)
    assert d.key.echoMode() == QLineEdit.EchoMode.Password
    assert not d.save_button.isEnabled() and not d.test_button.isEnabled()
    d.url.setText(server.url + "/v1")
    d.key.setText("sk-wrong")
    d.test_connection()
    qtbot.waitUntil(
        lambda: d._check is None and d.result_label.text() != "Connecting…", timeout=10_000
    )
    assert d.result_label.text().startswith("✘") and "API key" in d.result_label.text()
    d.key.setText(KEY)
    d.test_connection()
    qtbot.waitUntil(lambda: d.result_label.text().startswith("✔"), timeout=10_000)
    assert "deepseek-r1, qwq-32b" in d.result_label.text()
    assert [d.model.itemText(i) for i in range(d.model.count())] == ["deepseek-r1", "qwq-32b"]
    d.model.setCurrentIndex(1)
    d.grab().save(str(tmp_path / "connect.png"))
    with qtbot.waitSignal(d.sig_saved):
        d.save_button.click()
    saved = remote.saved_remotes(tmp_path / "remote_models.json")
    assert saved == [remote.RemoteModel(server.url + "/v1", "qwq-32b")]
    assert KEY not in (tmp_path / "remote_models.json").read_text()
    assert memory_keyring.store == {("ponder", f"remote:{server.url}/v1"): KEY}
    assert remote.api_key_for(saved[0]) == KEY and d.warning is None


def test_a_server_that_is_not_there_is_said_in_words(qtbot, tmp_path):
    d = make_dialog(qtbot, tmp_path)
    d.url.setText("http://127.0.0.1:9/v1")
    d.test_connection()
    qtbot.waitUntil(
        lambda: d._check is None and d.result_label.text() != "Connecting…", timeout=10_000
    )
    assert "connection refused" in d.result_label.text()


def test_without_a_keyring_the_entry_is_saved_and_the_user_is_told(tmp_path):
    # conftest sets the null keyring backend: nothing can hold the key
    entry = remote.RemoteModel("http://gpu:8000/v1/", "deepseek-r1")
    warning = remote.save_remote(entry, "sk-abc", tmp_path / "r.json")
    assert warning and "keyring" in warning
    data = json.loads((tmp_path / "r.json").read_text())
    assert data[0]["base_url"] == "http://gpu:8000/v1" and "sk-abc" not in json.dumps(data)


def test_saved_entries_replace_forget_and_load_through_the_engine_client(
    tmp_path, server, memory_keyring
):
    path = tmp_path / "r.json"
    a = remote.RemoteModel(server.url, "deepseek-r1", label="R1 on the lab box")
    remote.save_remote(a, KEY, path)
    remote.save_remote(a, KEY, path)  # saving again replaces
    remote.save_remote(remote.RemoteModel(server.url, "qwq-32b"), None, path)
    assert [e.model for e in remote.saved_remotes(path)] == ["deepseek-r1", "qwq-32b"]
    assert a.display_name == "R1 on the lab box"

    from app.core.engine import EngineClient

    server.need_key = True
    with EngineClient(load_timeout_s=30) as client:
        info = remote.load_remote(client, a)  # the key comes from the keyring
    assert info["name"] == "deepseek-r1" and KEY not in json.dumps(info)
    assert remote.forget_remote(remote.RemoteModel(server.url, "qwq-32b"), path)
    assert memory_keyring.store  # still used by the other entry
    assert remote.forget_remote(a, path) and memory_keyring.store == {}
    assert remote.saved_remotes(path) == [] and not remote.forget_remote(a, path)


def test_without_a_keyring_the_dialog_says_so_and_can_keep_the_key_for_this_session(
    qtbot, tmp_path
):
    """The null keyring (conftest): Save no longer closes silently with the key lost; the
    dialog says the key is not saved and offers to keep it in memory until Ponder quits."""
    d = make_dialog(qtbot, tmp_path)
    d.url.setText("http://127.0.0.1:9/v1")
    d.key.setText("sk-session-only")
    d.model.setEditText("deepseek-r1")
    saved: list = []
    d.sig_saved.connect(saved.append)
    d.save_button.click()
    assert d.isVisible() and d.keyring_box.isVisible() and not saved
    text = d.keyring_label.text()
    assert "no password store (keyring)" in text and "401" in text
    d.grab().save(str(tmp_path / "keyring.png"))
    d.session_button.click()
    assert saved and not d.isVisible()
    assert remote.api_key_for(saved[0]) == "sk-session-only"  # from memory, for this session
    assert "sk-session-only" not in (tmp_path / "remote_models.json").read_text()
    assert remote.forget_remote(saved[0], tmp_path / "remote_models.json")
    assert remote.api_key_for(saved[0]) is None
