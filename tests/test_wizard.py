"""The model wizard offscreen, end to end against the local Hub, with a scripted GGUF model
as the recommended download: detect → recommend → download (pause, resume) → load with the
real engine → a chat answer with its thinking panel. Also the ways step 3 goes wrong:
offline, a gated repo and token entry, not enough disk, cancel midway and start again.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel

from app.core import model_choice
from app.core.chat_store import ChatStore
from app.core.downloads import OfflineError, TokenRequiredError
from app.ui.theme import apply_theme
from app.ui.wizard import ModelWizard
from hub_fixtures import FAST
from scripted import ANSWER_TEXT, THINK_TEXT

ROOT = Path(__file__).resolve().parents[1]
REPO = "test/Tiny-R1-GGUF"
FILE = "Tiny-R1-Q4_K_M.gguf"
LAPTOP = ROOT / "resources" / "hardware_profiles" / "laptop-8gb-no-gpu.json"
CATALOG = f"""
schema = 1
[defaults]
sampling = {{ temperature = 0.6, top_p = 0.95, system_prompt = false }}
thinking_tokens = 20
answer_tokens = 10
recommended_ctx = 8192

[models.tiny-r1]
name = "Tiny-R1-Scripted"
family = "deepseek-r1"
distill = true
license = "MIT"
params_b = 0.001
released = "2025-01-20"
arch = {{ type = "dense", layers = 1, hidden = 64, heads = 1, kv_heads = 1, head_dim = 64, ffn = 64, vocab = 300, max_ctx = 8192 }}
[[models.tiny-r1.sources]]
format = "gguf"
repo = "{REPO}"
pattern = "Tiny-R1-{{quant}}.gguf"
quants = {{ Q4_K_M = 0.003 }}
"""  # noqa: E501


@pytest.fixture
def env(tmp_path, hub, hf_cache, scripted_models, monkeypatch):
    """A ChoiceEnv: the 8 GB laptop profile, a one-model catalog, the local Hub and cache."""
    monkeypatch.setenv("PONDER_CONFIG_DIR", str(tmp_path / "config"))
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(CATALOG)
    hub.add_repo(REPO, {FILE: scripted_models.preopen})
    settings = model_choice.DownloadSettings(endpoint=hub.url, cache_dir=hf_cache, policy=FAST)
    return model_choice.ChoiceEnv(
        profile=model_choice.read_profile_file(LAPTOP), catalog_path=catalog, download=settings
    )


def open_wizard(qtbot, env) -> ModelWizard:
    apply_theme(QApplication.instance(), dark=False)
    w = ModelWizard(env)
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.sig_surveyed, timeout=10_000):
        w.start()
    return w


def click(qtbot, button) -> None:
    assert button.isVisible() and button.isEnabled(), button.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def to_download(qtbot, w: ModelWizard) -> None:
    """From the machine page to the download page with the recommended option."""
    click(qtbot, w.next_button)  # -> Pick a model
    assert w.pick.selected is w.recommendation.recommended
    click(qtbot, w.next_button)  # -> Download (starts at once)
    assert w.stack.currentWidget() is w.download


def wait_state(qtbot, w: ModelWizard, *states: str, timeout: int = 20_000) -> None:
    qtbot.waitUntil(lambda: w.download.state in states, timeout=timeout)


def test_wizard_end_to_end_download_pause_resume_load_and_answer(
    qtbot, env, hub, hf_cache, tmp_path
):
    pytest.importorskip("llama_cpp")
    from app.core.engine import EngineClient
    from app.ui.main_window import MainWindow

    window = MainWindow(ChatStore(tmp_path / "chats.sqlite3"), EngineClient(load_timeout_s=120))
    qtbot.addWidget(window)
    window.choice_env = env
    window.show()
    w = window.open_wizard()
    qtbot.waitUntil(lambda: w.recommendation is not None, timeout=10_000)

    # 1. Your machine: the example laptop, in words
    facts = {f.label: f.value for f in model_choice.describe_machine(env.profile)}
    assert "None that Ponder can use" in facts["Graphics card"]
    assert w.machine.facts_frame.isVisible() and "processor" in w.machine.status.text()

    # 2. Pick a model: the scripted model is recommended, with why in words
    click(qtbot, w.next_button)
    rec = w.recommendation.recommended
    assert rec.model_id == "tiny-r1" and rec.quant == "Q4_K_M" and rec.mode == "cpu"
    assert w.pick.rec_title.text() == "Tiny-R1-Scripted"
    assert "typical answer takes" in w.pick.rec_time.text()
    assert "download" in w.pick.rec_size.text() and "4-bit" in w.pick.rec_size.text()
    assert w.next_button.text().startswith("Download")

    # 3. Download, slowed down so it can be paused midway, then resumed
    hub.rate = 1_000_000
    click(qtbot, w.next_button)
    page = w.download
    qtbot.waitUntil(lambda: page.bar.value() > 0, timeout=20_000)
    assert FILE in page.files.text() and "free disk space after" in page.files.text()
    click(qtbot, page.pause_button)
    wait_state(qtbot, w, "paused")
    assert page.pause_button.text() == "Resume" and "Paused" in page.progress.text()
    partial = list(hf_cache.glob("models--test--Tiny-R1-GGUF/blobs/*.incomplete"))
    assert partial and 0 < partial[0].stat().st_size < hub.file(REPO, FILE).size
    hub.wait_idle()
    hub.rate = None
    hub.reset_counters()
    click(qtbot, page.pause_button)  # Resume
    # 4. Ready: the download completes, verified, and the model loads with the plan's settings
    qtbot.waitUntil(lambda: w.stack.currentWidget() is w.ready, timeout=20_000)
    assert hub.bytes_sent < hub.file(REPO, FILE).size  # resumed, not started over
    qtbot.waitUntil(lambda: w.ready.loaded or w.ready.failed, timeout=60_000)
    assert w.ready.loaded, w.ready.status.text()
    assert window.controller.n_ctx == 8192 and "8,192-token context" in (
        w.ready.settings_label.text()
    )
    assert "Tiny-R1" in window.model_label.text() or window.controller.model_info
    assert w.next_button.text() == "Start chatting"
    click(qtbot, w.next_button)
    assert not w.isVisible()

    # The sample question is asked in a new chat; the answer comes with its thinking panel
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=30_000)
    msg = window.chat.last_assistant()
    assert msg.thinking.text().strip() == THINK_TEXT
    assert msg.answer.toPlainText().strip() == ANSWER_TEXT
    first_user = window.store.messages(window.controller.conversation_id)[0]
    assert first_user.content == model_choice.SAMPLE_QUESTION

    # The measured speed is stored for this model, next to the prediction
    measured = window.stats.get(window.controller.model_path)
    assert measured is not None and measured.decode_tps > 0
    assert measured.model_id == "tiny-r1" and measured.quant == "Q4_K_M"
    assert measured.predicted_tps == pytest.approx(rec.decode_tps)
    assert "predicted" in window.speed_label.text()
    again = model_choice.recommend(env.profile, env.catalog_path, window.stats)
    assert "measured" in again.recommended.speed_words
    window.close()


def test_offline_at_the_download_step_says_so_and_try_again_works(qtbot, env, monkeypatch):
    from huggingface_hub import constants

    w = open_wizard(qtbot, env)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    to_download(qtbot, w)
    wait_state(qtbot, w, "failed")
    assert isinstance(w.download.last_error, OfflineError)
    assert w.download.error_frame.isVisible()
    assert "No connection" in w.download.error.text()
    assert not w.download.token_row.isVisible()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    click(qtbot, w.download.retry_button)
    qtbot.waitUntil(lambda: w.stack.currentWidget() is w.ready, timeout=20_000)
    assert w.download.state == "done"


def test_gated_repo_asks_for_a_token_and_keeps_it_in_the_keyring(
    qtbot, env, hub, scripted_models, memory_keyring
):
    hub.add_repo(REPO, {FILE: scripted_models.preopen}, gated=True)
    hub.tokens.add("hf_goodtoken123")
    w = open_wizard(qtbot, env)
    to_download(qtbot, w)
    wait_state(qtbot, w, "failed")
    page = w.download
    assert isinstance(page.last_error, TokenRequiredError)
    assert page.token_row.isVisible() and "gated" in page.error.text()
    qtbot.keyClicks(page.token_edit, "hf_goodtoken123")
    click(qtbot, page.token_button)
    qtbot.waitUntil(lambda: w.stack.currentWidget() is w.ready, timeout=20_000)
    assert memory_keyring.store[("ponder", "huggingface")] == "hf_goodtoken123"
    assert page.token_edit.text() == ""


def test_not_enough_disk_is_refused_before_downloading(qtbot, env, hub):
    from dataclasses import replace

    env.download = replace(env.download, disk_free=lambda _p: 1_000)
    w = open_wizard(qtbot, env)
    to_download(qtbot, w)
    wait_state(qtbot, w, "failed")
    assert "Not enough disk space" in w.download.error.text()
    assert hub.bytes_sent == 0
    click(qtbot, w.download.other_button)  # back to choose a smaller model
    assert w.stack.currentWidget() is w.pick


def test_cancel_midway_deletes_the_partial_file_and_start_again_completes(
    qtbot, env, hub, hf_cache
):
    hub.rate = 1_000_000
    w = open_wizard(qtbot, env)
    to_download(qtbot, w)
    page = w.download
    qtbot.waitUntil(lambda: page.bar.value() > 0, timeout=20_000)
    click(qtbot, page.cancel_button)
    wait_state(qtbot, w, "cancelled")
    assert "Cancelled" in page.progress.text() and page.bar.value() == 0
    assert not list(hf_cache.glob("models--test--Tiny-R1-GGUF/blobs/*.incomplete"))
    hub.wait_idle()
    hub.rate = None
    assert page.retry_button.text() == "Start again"
    click(qtbot, page.retry_button)
    qtbot.waitUntil(lambda: w.stack.currentWidget() is w.ready, timeout=20_000)
    assert page.result is not None and page.result.main_path.is_file()


def test_the_full_r1_on_a_small_machine_explains_the_server_route(qtbot, tmp_path):
    env = model_choice.ChoiceEnv(
        profile=model_choice.read_profile_file(LAPTOP),
        download=model_choice.DownloadSettings(cache_dir=tmp_path / "cache"),
    )
    w = open_wizard(qtbot, env)
    click(qtbot, w.next_button)
    full = next(o for o in w.recommendation.options if o.model_id.startswith("deepseek-r1")
                and "distill" not in o.model_id and o.mode == "server")  # fmt: skip
    w.pick.select(full)
    assert "needs a server" in w.pick.detail.text() and "vLLM" in w.pick.detail.text()
    assert w.pick.connect_button.isVisible() and w.pick.connect_button.isEnabled()
    assert not w.next_button.isEnabled()  # no doomed download is offered
    # how to start it on a server: copyable commands sized to the plan
    click(qtbot, w.pick.commands_button)
    dialog = w.pick.commands_dialog
    commands = [t.toPlainText() for t in dialog.texts]
    assert any("vllm serve deepseek-ai/DeepSeek-R1" in c and "--reasoning-parser" in c
               for c in commands)  # fmt: skip
    assert any("sglang.launch_server" in c for c in commands)
    assert any(c.startswith("hf download unsloth/") and "llama-server" in c for c in commands)
    assert "GPUs of 80 GB" in dialog.findChild(QLabel).text()
    with qtbot.waitSignal(w.pick.sig_connect_server, timeout=2000):
        click(qtbot, dialog.connect_button)
    # every quality level is explained in one line
    tip = w.pick.compare.toolTip()
    for level in ("Q2_K", "Q4_K_M", "Q8_0", "F16"):
        assert level in tip
    # the filter narrows the table
    w.pick.filter.setCurrentIndex(2)  # runs well
    assert all(o.usable for o in w.pick.shown) and w.pick.table.rowCount() == len(w.pick.shown)
    w.pick.search.setText("1.5B")
    assert w.pick.shown and all("1.5B" in o.name for o in w.pick.shown)


@pytest.mark.parametrize("name", ["desktop-rtx4090-64gb", "macbook-air-m2-16gb"])
def test_example_machines_get_a_recommendation_in_words(name):
    profile = model_choice.read_profile_file(ROOT / "resources" / "hardware_profiles" /
                                             f"{name}.json")  # fmt: skip
    rec = model_choice.recommend(profile)
    top = rec.recommended
    assert top is not None and top.mode == "gpu"
    assert top.headline().startswith("Fits in")
    assert "typical answer takes about" in top.headline()
    assert top.quality_note and top.load_settings()["n_gpu_layers"] == -1
    if "macbook" in name:
        assert top.format == "mlx" and top.load_settings()["engine"] == "mlx"


def test_first_launch_opens_the_wizard_once(qtbot, tmp_path, monkeypatch):
    from app.core import app_state
    from app.ui.main_window import MainWindow
    from app.ui.scripted_engine import ScriptedClient

    monkeypatch.setenv("PONDER_CONFIG_DIR", str(tmp_path / "config"))
    window = MainWindow(ChatStore(tmp_path / "chats.sqlite3"), ScriptedClient())
    qtbot.addWidget(window)
    window.choice_env = model_choice.ChoiceEnv(profile=model_choice.read_profile_file(LAPTOP))
    assert not app_state.wizard_done()
    w = window.maybe_first_run()
    assert w is not None and w.isVisible() and app_state.wizard_done()
    qtbot.waitUntil(lambda: w.recommendation is not None, timeout=10_000)
    w.close()
    assert window.maybe_first_run() is None
    titles = [a.text() for a in window.menuBar().actions()]
    assert "&Model" in titles
    assert window.wizard_action.text() == "Model &wizard…"
    window.close()


def test_no_network_fails_at_once_and_cancel_while_asking_cancels_at_once(qtbot, env, hub):
    """A Hub name that does not resolve is "No connection" in under 2 s (it took 31 s of
    retries); Cancel while the Hub is being asked (in a retry back-off) ends at once."""
    import time
    from dataclasses import replace

    from app.core.downloads import RetryPolicy

    slow = RetryPolicy(attempts=6, base_delay_s=5.0)  # the back-off a real failure gets
    env.download = replace(env.download, endpoint="https://huggingface.invalid", policy=slow)
    w = open_wizard(qtbot, env)
    start = time.monotonic()
    to_download(qtbot, w)
    wait_state(qtbot, w, "failed", timeout=10_000)
    assert time.monotonic() - start < 2.0
    assert "No connection" in w.download.error.text()
    w.close()

    env.download = replace(env.download, endpoint=hub.url, policy=slow)
    hub.fail_next(503, count=10, where="api")  # the Hub is down: retries back off 5 s
    w = open_wizard(qtbot, env)
    to_download(qtbot, w)
    qtbot.wait(300)
    assert w.download.state == "running"
    start = time.monotonic()
    click(qtbot, w.download.cancel_button)
    assert w.download.state == "cancelled" and time.monotonic() - start < 0.5
    assert "Cancelled" in w.download.progress.text()
    qtbot.wait(200)
    assert w.download.state == "cancelled"  # the old job says nothing more
    hub.clear_faults()
    w.close()


def test_a_filter_that_hides_the_chosen_row_clears_its_description(qtbot, env):
    """The detail box described a row the filter had hidden (and Next still took it); and
    "What do the quality levels mean?" did nothing on a click."""
    w = open_wizard(qtbot, env)
    click(qtbot, w.next_button)  # -> Pick a model
    pick = w.pick
    assert pick.selected is w.recommendation.recommended
    assert w.recommendation.recommended.name in pick.detail.text()
    pick.filter.setCurrentIndex(3)  # "Needs a server": the tiny model is not among them
    assert w.recommendation.recommended not in pick.shown
    assert pick.selected is None and "Choose a model" in pick.detail.text()
    assert not w.next_button.isEnabled()
    pick.filter.setCurrentIndex(0)
    pick.select(w.recommendation.recommended)
    assert w.next_button.isEnabled()
    qtbot.mouseClick(pick.compare, Qt.MouseButton.LeftButton)
    assert pick.quality_box.isVisible() and "Q4" in pick.quality_box.text()
    pick.quality_box.close()
    w.close()
