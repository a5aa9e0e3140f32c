"""Measured speed and memory per model: stored after a real answer, shown next to the
prediction, and summarised for the planner's calibration."""

from __future__ import annotations

import json

import pytest

from app.core.model_stats import MIN_TOKENS, ModelStats, measured_words


def test_first_answer_is_stored_and_later_ones_smoothed(tmp_path):
    stats = ModelStats(tmp_path / "s.json")
    model = tmp_path / "m.gguf"
    model.write_bytes(b"x")
    assert stats.get(model) is None
    first = stats.record_answer(
        model,
        20.0,
        completion_tokens=100,
        peak_memory_bytes=5 * 10**9,
        predicted_tps=25.0,
        model_id="m",
        quant="Q4_K_M",
        name="M",
    )
    assert first.decode_tps == 20.0 and first.first_decode_tps == 20.0 and first.answers == 1
    assert first.ratio == pytest.approx(0.8)
    second = stats.record_answer(model, 30.0, completion_tokens=100)
    assert second.first_decode_tps == 20.0 and second.answers == 2
    assert 20.0 < second.decode_tps < 30.0 and second.model_id == "m"
    assert stats.for_catalog("m", "q4_k_m").key == second.key
    assert measured_words(second).startswith("measured 23 tokens/s, 5.0 GB")
    # a fresh reader sees the same (it is on disk)
    assert ModelStats(tmp_path / "s.json").get(model) == second


def test_answers_too_short_to_time_are_not_stored(tmp_path):
    stats = ModelStats(tmp_path / "s.json")
    assert stats.record_answer("x", 50.0, completion_tokens=MIN_TOKENS - 1) is None
    assert stats.record_answer("x", None, completion_tokens=100) is None
    assert stats.all() == []


def test_speed_ratio_is_the_median_over_models(tmp_path):
    stats = ModelStats(tmp_path / "s.json")
    assert stats.speed_ratio() is None
    for name, measured in (("a", 10.0), ("b", 20.0), ("c", 60.0)):
        stats.record_answer(tmp_path / name, measured, completion_tokens=50, predicted_tps=20.0)
    stats.record_answer(tmp_path / "d", 5.0, completion_tokens=50)  # no prediction: left out
    assert stats.speed_ratio() == pytest.approx(1.0)


def test_touch_last_used_forget_and_a_damaged_file(tmp_path):
    path = tmp_path / "s.json"
    stats = ModelStats(path)
    stats.touch(tmp_path / "a", "A", model_id=None)
    assert list(stats.last_used()) == [str(tmp_path / "a")]
    stats.forget(tmp_path / "a")
    assert stats.all() == []
    path.write_text("{not json")
    assert stats.all() == []  # ignored, not fatal
    stats.touch(tmp_path / "b", "B")
    assert json.loads(path.read_text())["models"][0]["name"] == "B"


def test_default_location_is_the_user_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("PONDER_DATA_DIR", str(tmp_path))
    assert ModelStats().path == tmp_path / "model_stats.json"


def test_the_recommendation_is_calibrated_by_what_was_measured(tmp_path):
    from pathlib import Path

    from app.core import model_choice

    profile = model_choice.read_profile_file(
        Path(__file__).resolve().parents[1] / "resources/hardware_profiles/laptop-8gb-no-gpu.json"
    )
    plain = model_choice.recommend(profile)
    stats = ModelStats(tmp_path / "s.json")
    stats.record_answer(tmp_path / "m.gguf", 10.0, completion_tokens=200, predicted_tps=20.0,
                        model_id="deepseek-r1-distill-qwen-1.5b", quant="Q4_K_M")  # fmt: skip
    slow = model_choice.recommend(profile, stats=stats)
    before = plain.find("deepseek-r1-distill-qwen-7b", "Q4_K_M")
    after = slow.find("deepseek-r1-distill-qwen-7b", "Q4_K_M")
    assert after.decode_tps == pytest.approx(before.decode_tps * 0.5, rel=0.05)  # ctx may differ
    assert after.uncalibrated_tps == pytest.approx(before.decode_tps, rel=0.05)  # stored
    mine = slow.find("deepseek-r1-distill-qwen-1.5b", "Q4_K_M")
    assert mine.measured is not None and mine.measured.decode_tps == 10.0


def test_speed_ratio_is_clamped_and_can_be_limited_to_trusted_models(tmp_path):
    stats = ModelStats(tmp_path / "s.json")
    stats.record_answer(tmp_path / "t", 585.0, completion_tokens=50, predicted_tps=1510.0,
                        model_id="tiny-r1")  # fmt: skip
    assert stats.speed_ratio() == pytest.approx(0.5)  # 0.39, clamped
    assert stats.speed_ratio(lambda m: m.model_id != "tiny-r1") is None


TINY_CATALOG = """
schema = 1
[defaults]
sampling = { temperature = 0.6, top_p = 0.95, system_prompt = false }
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
arch = { type = "dense", layers = 1, hidden = 64, heads = 1, kv_heads = 1, head_dim = 64, ffn = 64, vocab = 300, max_ctx = 8192 }
[[models.tiny-r1.sources]]
format = "gguf"
repo = "test/Tiny-R1-GGUF"
pattern = "Tiny-R1-{quant}.gguf"
quants = { Q4_K_M = 0.003 }
"""  # noqa: E501


@pytest.mark.parametrize("catalog_text", [None, TINY_CATALOG])
def test_a_chat_with_a_tiny_model_does_not_change_the_recommendation(tmp_path, catalog_text):
    """The wizard after one chat with a 2 MB test model (585 measured vs 1,510 predicted
    tokens/s) recommends what it did before: a tiny model says nothing about a 7B here."""
    from pathlib import Path

    from app.core import model_choice

    profile = model_choice.read_profile_file(
        Path(__file__).resolve().parents[1] / "resources/hardware_profiles/laptop-8gb-no-gpu.json"
    )
    catalog = None
    if catalog_text:
        catalog = tmp_path / "catalog.toml"
        catalog.write_text(catalog_text)
    before = model_choice.recommend(profile, catalog)
    stats = ModelStats(tmp_path / "s.json")
    stats.record_answer(tmp_path / "tiny.gguf", 585.0, completion_tokens=200,
                        predicted_tps=1510.0, model_id="tiny-r1", quant="Q4_K_M")  # fmt: skip
    after = model_choice.recommend(profile, catalog, stats=stats)
    assert after.recommended.key == before.recommended.key
    assert after.recommended.decode_tps == pytest.approx(before.recommended.decode_tps)
    assert after.reason == before.reason
