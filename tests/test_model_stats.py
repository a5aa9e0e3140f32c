"""Measured speed and memory per model: stored after a real answer, shown next to the
prediction, and summarised for the planner's calibration."""

from __future__ import annotations

import json

import pytest

from app.core.model_stats import (
    MIN_TOKENS,
    THINKING_LIMITS,
    THINKING_WINDOW,
    ModelStats,
    measured_words,
)


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
    for _ in range(3):  # and how long it thought (6 scripted tokens) is no figure either
        stats.record_answer(tmp_path / "tiny.gguf", 585.0, completion_tokens=200,
                            predicted_tps=1510.0, model_id="tiny-r1", quant="Q4_K_M",
                            thinking_tokens=6)  # fmt: skip
    after = model_choice.recommend(profile, catalog, stats=stats)
    assert after.recommended.key == before.recommended.key
    assert after.recommended.decode_tps == pytest.approx(before.recommended.decode_tps)
    assert after.reason == before.reason
    assert [o.plan for o in after.options] == [o.plan for o in before.options]


# -- how long a model thinks ---------------------------------------------------------------
def test_the_thinking_length_is_the_median_of_complete_answers_that_thought(tmp_path):
    stats = ModelStats(tmp_path / "s.json")
    q4, q8 = tmp_path / "m-Q4_K_M.gguf", tmp_path / "m-Q8_0.gguf"
    first = stats.record_answer(q4, 20.0, completion_tokens=1000, thinking_tokens=900,
                                model_id="m", quant="Q4_K_M")  # fmt: skip
    assert first.thinking_samples == (900,) and first.thinking_tokens == 900
    # no thinking (a Qwen3 answer with thinking off), or thinking a budget cut: speed only
    stats.record_answer(q4, 20.0, completion_tokens=300, thinking_tokens=0)
    cut = stats.record_answer(q4, 20.0, completion_tokens=300, thinking_tokens=200,
                              thinking_cut=True)  # fmt: skip
    assert cut.answers == 3 and cut.thinking_samples == (900,)
    # an answer too short to time stores nothing, its thinking included
    assert stats.record_answer(q4, 20.0, completion_tokens=2, thinking_tokens=2) is None
    second = stats.record_answer(q4, 20.0, completion_tokens=3000, thinking_tokens=2500)
    assert second.thinking_tokens == 1700  # the median of 900 and 2500
    # two answers are not enough to go on; a third, from another quant of the model, is
    assert stats.thinking_lengths() == {}
    stats.record_answer(q8, 15.0, completion_tokens=2000, thinking_tokens=1800, model_id="m",
                        quant="Q8_0")  # fmt: skip
    assert stats.thinking_lengths() == {"m": 1800}  # median of 900, 1800, 2500
    assert stats.thinking_lengths(lambda m: m.quant == "Q8_0") == {}  # one answer left
    assert ModelStats(tmp_path / "s.json").get(q4).thinking_samples == (900, 2500)  # on disk
    # only the last answers count, and the figure is clamped to a sane range
    for _ in range(THINKING_WINDOW + 5):
        kept = stats.record_answer(q4, 20.0, completion_tokens=100_000, thinking_tokens=90_000)
    assert kept.thinking_samples == (90_000,) * THINKING_WINDOW
    assert stats.thinking_lengths() == {"m": THINKING_LIMITS[1]}


def test_an_old_stats_file_without_thinking_lengths_loads(tmp_path):
    """A file written before thinking lengths were measured: its records load as they were,
    and the next answer starts the thinking length; a damaged list is dropped, not fatal."""
    path = tmp_path / "model_stats.json"
    old = {"key": str(tmp_path / "a.gguf"), "name": "A", "model_id": "m", "quant": "Q4_K_M",
           "decode_tps": 20.0, "first_decode_tps": 20.0, "predicted_tps": 25.0,
           "peak_memory_bytes": 5 * 10**9, "n_ctx": 16384, "n_gpu_layers": -1, "answers": 7,
           "measured_at": 1.0, "last_used": 1.0}  # fmt: skip
    damaged = {"key": str(tmp_path / "b.gguf"), "decode_tps": 9.0, "answers": 1,
               "thinking_samples": "many"}  # fmt: skip
    path.write_text(json.dumps({"version": 1, "models": [old, damaged]}))
    stats = ModelStats(path)
    a = stats.get(tmp_path / "a.gguf")
    assert a.decode_tps == 20.0 and a.answers == 7 and a.ratio == pytest.approx(0.8)
    assert a.thinking_samples == () and a.thinking_tokens is None
    assert stats.get(tmp_path / "b.gguf").thinking_samples == ()
    assert stats.thinking_lengths() == {}
    after = stats.record_answer(tmp_path / "a.gguf", 20.0, completion_tokens=900,
                                thinking_tokens=800)  # fmt: skip
    assert after.answers == 8 and after.thinking_samples == (800,) and after.model_id == "m"
    saved = json.loads(path.read_text())["models"]
    assert next(m for m in saved if m["name"] == "A")["thinking_samples"] == [800]


def test_the_recommendation_uses_the_thinking_length_measured_for_that_model(tmp_path):
    """Three answers of the 7B that thought 2,400-3,000 tokens: its options plan 2,700
    tokens of thinking and say so; every other model keeps the catalog's 1,200."""
    from pathlib import Path

    from app.core import model_choice

    profile = model_choice.read_profile_file(
        Path(__file__).resolve().parents[1] / "resources/hardware_profiles/laptop-8gb-no-gpu.json"
    )
    plain = model_choice.recommend(profile)
    stats = ModelStats(tmp_path / "s.json")
    seven = "deepseek-r1-distill-qwen-7b"
    for quant, thought in (("Q4_K_M", 2400), ("Q4_K_M", 3000), ("Q8_0", 2700)):
        stats.record_answer(tmp_path / f"7b-{quant}.gguf", 8.0, completion_tokens=thought + 300,
                            thinking_tokens=thought, model_id=seven, quant=quant)  # fmt: skip
    mine = model_choice.recommend(profile, stats=stats)
    before, after = plain.find(seven, "Q4_K_M"), mine.find(seven, "Q4_K_M")
    assert not before.thinking_measured and before.plan.answer_tokens == 1200 + 300
    assert after.thinking_measured and after.plan.answer_tokens == 2700 + 300
    assert after.answer_seconds > before.answer_seconds * 1.5
    assert "(3,000 tokens, from your answers)" in after.reason
    assert after.headline().endswith("(its thinking length from your answers).")
    assert after.decode_tps == pytest.approx(before.decode_tps, rel=0.05)  # no speed measured
    other_before = plain.find("deepseek-r1-distill-qwen-1.5b", "Q4_K_M")
    other_after = mine.find("deepseek-r1-distill-qwen-1.5b", "Q4_K_M")
    assert other_after.plan == other_before.plan and not other_after.thinking_measured
