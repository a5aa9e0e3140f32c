"""The Connect dialog's "Reasoning format" (issue 16) and its refusal of an address that
carries a user name and password (issue 20), offscreen."""

from __future__ import annotations

from app.core import remote
from app.ui.connect_dialog import ConnectDialog


def make_dialog(qtbot, tmp_path, **kw) -> ConnectDialog:
    d = ConnectDialog(list_path=tmp_path / "remote_models.json", **kw)
    qtbot.addWidget(d)
    d.show()
    return d


def test_the_reasoning_format_is_chosen_saved_and_shown_again(qtbot, tmp_path):
    d = make_dialog(qtbot, tmp_path)
    labels = [d.reasoning.itemText(i) for i in range(d.reasoning.count())]
    assert labels[0].startswith("Auto") and any("<think> tags" in t for t in labels)
    d.url.setText("gpu-box:8000")
    d.model.setEditText("reasoner")
    d.reasoning.setCurrentIndex(d.reasoning.findData("tags"))
    d.save()
    (entry,) = remote.saved_remotes(tmp_path / "remote_models.json")
    assert entry.reasoning_format == "tags" and entry.base_url == "http://gpu-box:8000"
    again = make_dialog(qtbot, tmp_path, entry=entry)
    assert again.reasoning.currentData() == "tags"


def test_an_address_with_a_password_is_refused_in_words_and_not_saved(qtbot, tmp_path):
    d = make_dialog(qtbot, tmp_path)
    d.url.setText("http://bob:pa55word@gpu-box:8000/v1")
    d.model.setEditText("m")
    d.save()
    assert d.result_label.text().startswith(
        "✘ Leave the user name and password out of the server address"
    )
    assert d.isVisible() and not (tmp_path / "remote_models.json").exists()
