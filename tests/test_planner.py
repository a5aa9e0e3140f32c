"""The planner's formulas and verdicts, and the ranking's invariants on the example machines."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.catalog import load_catalog
from app.core.hardware.profile import (
    CpuInfo,
    EngineSupport,
    GpuInfo,
    HardwareProfile,
    RamInfo,
)
from app.core.planner import (
    MIN_CTX,
    REASONING_CTX,
    PlanError,
    budget_for,
    duration_words,
    plan_option,
    rank,
)
from app.core.planner.memory import compute_bytes_gpu, kv_bytes_per_token, kv_cache_bytes
from app.core.planner.profile_file import read_hardware_file
from app.core.planner.ranking import allowed, tier

GIB = 1024**3
PROFILES = Path(__file__).resolve().parents[1] / "resources" / "hardware_profiles"
EXAMPLES = sorted(p.stem for p in PROFILES.glob("*.json"))
CLI_KEYS = ("model", "quant", "format", "engine", "ctx", "weights_bytes", "kv_cache_bytes",
            "compute_bytes", "overhead_bytes", "total_bytes", "gpu_layers", "vram_bytes",
            "ram_bytes", "mode", "decode_tps", "answer_seconds", "reason")  # fmt: skip


def example(name: str) -> HardwareProfile:
    return read_hardware_file(PROFILES / f"{name}.json")


def cuda_box(vram_gib: int, ram_gib: int, n: int = 1) -> HardwareProfile:
    gpus = tuple(GpuInfo("nvidia", "NVIDIA GeForce RTX 4090", vram_gib * GIB, vram_gib * GIB,
                         1008.0, "table", True, i) for i in range(n))  # fmt: skip
    return HardwareProfile("linux", CpuInfo("EPYC", 32, 64, (), 200.0), RamInfo(ram_gib * GIB,
                           ram_gib * GIB), gpus, engines=EngineSupport(True, True))  # fmt: skip


def test_the_example_machines_are_shipped():
    assert sorted(["laptop-8gb-no-gpu", "laptop-16gb-no-gpu", "laptop-rtx4060-8gb",
                   "macbook-air-m2-16gb", "macbook-pro-m2-max-64gb", "mac-studio-m3-ultra-512gb",
                   "desktop-rtx4090-64gb", "desktop-rtx5090-64gb", "workstation-2x-rtx3090",
                   "server-2x-a100-80gb", "server-8x-h100"]) == EXAMPLES  # fmt: skip


def test_mla_kv_cache_is_one_latent_per_token_per_layer():
    arch = load_catalog().get("deepseek-r1").arch
    assert kv_bytes_per_token(arch, "f16") / 1024 == pytest.approx(68.6, abs=0.1)
    assert kv_cache_bytes(arch, 32768) / GIB == pytest.approx(2.1, abs=0.05)


def test_q8_0_kv_cache_is_about_half_of_f16():
    arch = load_catalog().get("deepseek-r1-distill-qwen-14b").arch
    assert kv_cache_bytes(arch, 16384, "q8_0") / kv_cache_bytes(arch, 16384) == 1.0625 / 2


def test_logits_buffer_grows_with_the_vocabulary():
    cat = load_catalog()
    qwen = compute_bytes_gpu(cat.get("deepseek-r1-distill-qwen-7b").arch, 16384)
    assert qwen == pytest.approx(4 * 512 * (3584 + 152064))  # ~0.3 GB for Qwen's vocabulary


def test_one_option_has_every_field_the_cli_promises():
    plan = plan_option(example("desktop-rtx4090-64gb"), "deepseek-r1-distill-qwen-14b", "Q4_K_M",
                       ctx=16384)  # fmt: skip
    d = plan.to_dict()
    for key in CLI_KEYS:
        assert key in d
    assert d["mode"] == "gpu" and d["engine"] == "llama_cpp" and d["format"] == "gguf"
    parts = d["weights_bytes"] + d["kv_cache_bytes"] + d["compute_bytes"] + d["overhead_bytes"]
    assert d["total_bytes"] == parts == d["vram_bytes"] + d["ram_bytes"]
    assert d["repo"] == "unsloth/DeepSeek-R1-Distill-Qwen-14B-GGUF"
    assert d["files"] == ["DeepSeek-R1-Distill-Qwen-14B-Q4_K_M.gguf"]
    # RTX 4090 measured 92.5 tokens/s for this model and quant (FACTS.md)
    assert 60 < plan.decode_tps < 110
    assert plan.load_settings() == {"n_ctx": 16384, "n_gpu_layers": -1, "flash_attn": True}


def test_speed_rule_is_near_the_published_measurements():
    # measured 20.2 for R1 Q4_K_M; R1-0528 (same architecture, MLA files) fits with its cache
    r1 = plan_option(example("mac-studio-m3-ultra-512gb"), "deepseek-r1-0528", "Q4_K_M",
                     ctx=16384)  # fmt: skip
    assert r1.mode == "gpu" and 15 < r1.decode_tps < 26
    q14 = plan_option(example("mac-studio-m3-ultra-512gb"), "deepseek-r1-distill-qwen-14b",
                      "Q4_K_M", ctx=16384)  # fmt: skip
    assert 35 < q14.decode_tps < 60  # measured 51.9


def test_too_big_for_the_gpu_splits_layers_and_keeps_the_split_consistent():
    profile = example("desktop-rtx4090-64gb")
    plan = plan_option(profile, "deepseek-r1-distill-llama-70b", "Q4_K_M", ctx=16384)
    assert plan.mode == "hybrid" and 0 < plan.gpu_layers < plan.layers
    assert plan.vram_bytes <= budget_for(profile).gpu_total_bytes
    assert plan.ram_bytes <= budget_for(profile).ram_bytes
    assert plan.vram_bytes + plan.ram_bytes == plan.total_bytes
    assert plan.load_settings()["n_gpu_layers"] == plan.gpu_layers
    assert plan.decode_tps < 5  # most layers read from system RAM


def test_moe_on_a_small_gpu_splits_layers_since_the_local_engine_cannot_place_experts():
    # llama-cpp-python 0.3.x has no tensor buffer overrides: "experts in RAM" would load every
    # layer on the GPU and run out of memory, so the local plan splits layers instead
    plan = plan_option(cuda_box(24, 512), "deepseek-r1-0528", "UD-IQ1_S", ctx=16384)
    assert plan.mode == "hybrid" and not plan.experts_in_ram
    assert 0 < plan.gpu_layers < plan.layers
    assert plan.vram_bytes < 24 * GIB and plan.ram_bytes > 120e9
    assert "override_tensors" not in plan.load_settings()
    assert plan.load_settings()["n_gpu_layers"] == plan.gpu_layers


def test_apple_budget_is_the_wired_limit_not_the_whole_memory():
    air = example("macbook-air-m2-16gb")
    b = budget_for(air)
    assert b.gpu_bytes == (int(10.9e9),) and b.unified
    plan = plan_option(air, "deepseek-r1-distill-qwen-14b", "4bit", ctx=16384)
    assert plan.total_bytes < 16 * GIB * 0.8  # fits in RAM…
    assert plan.mode == "server"  # …but not in what Metal may wire


def test_mlx_does_not_run_off_apple_silicon():
    plan = plan_option(example("desktop-rtx4090-64gb"), "deepseek-r1-distill-qwen-7b", "4bit")
    assert plan.mode == "no" and "Apple Silicon" in plan.reason


def test_too_big_for_the_machine_is_a_server_option():
    plan = plan_option(example("laptop-8gb-no-gpu"), "deepseek-r1", "Q4_K_M")
    assert plan.mode == "server" and plan.engine == "openai"
    assert "serving engine" in plan.reason and plan.decode_tps is None


def test_automatic_context_is_reasoning_sized_when_memory_allows():
    plan = plan_option(example("workstation-2x-rtx3090"), "deepseek-r1-0528-qwen3-8b", "Q4_K_M")
    assert plan.ctx == 32768 and plan.mode == "gpu"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model_id": "deepseek-r1-distil-qwen-7b", "quant": "Q4_K_M"},
         "Did you mean deepseek-r1-distill-qwen-7b"),
        ({"model_id": "deepseek-r1-distill-qwen-7b", "quant": "Q4_0"}, "has no quant"),
        ({"model_id": "deepseek-r1-distill-qwen-7b", "quant": "Q4_K_M", "ctx": 262144},
         "at most 131,072 tokens"),
        ({"model_id": "deepseek-r1-distill-qwen-7b", "quant": "Q4_K_M", "kv_type": "q2"},
         "KV cache type"),
        ({"model_id": "deepseek-r1-distill-qwen-7b", "quant": "4bit", "engine": "llama_cpp"},
         "GGUF"),
    ],
)  # fmt: skip
def test_bad_requests_raise_a_plan_error_sentence(kwargs, message):
    with pytest.raises(PlanError, match=message) as info:
        plan_option(example("laptop-8gb-no-gpu"), **kwargs)
    assert str(info.value).rstrip("?").endswith((".", "all"))


@pytest.mark.parametrize(
    "content",
    ["not json", "[]", '{"os": "linux"}', '{"os": "linux", "cpu": {"model": 1}, "ram": {}}'],
)
def test_malformed_hardware_file_is_a_clear_error(tmp_path, content):
    path = tmp_path / "hw.json"
    path.write_text(content)
    with pytest.raises(PlanError, match="hardware file") as info:
        read_hardware_file(path)
    assert str(info.value).endswith(".")


def test_words_for_durations():
    assert duration_words(4) == "under 10 seconds"
    assert duration_words(42) == "about 40 seconds"
    assert duration_words(130) == "about 2 minutes"
    assert duration_words(5400) == "about 1.5 hours"
    assert duration_words(None) == "unknown"


# ---------------------------------------------------------------- ranking invariants


@pytest.fixture(scope="module")
def rankings():
    return {name: rank(example(name)) for name in EXAMPLES}


@pytest.mark.parametrize("name", EXAMPLES)
def test_recommendation_fits_the_budget_with_its_context(rankings, name):
    r = rankings[name]
    rec = r.recommended
    assert rec is not None and rec.runs_here and rec.ctx >= MIN_CTX
    b = budget_for(example(name))
    assert rec.vram_bytes <= b.gpu_total_bytes
    assert (rec.vram_bytes + rec.ram_bytes if b.unified else rec.ram_bytes) <= b.ram_bytes
    assert rec.total_bytes == rec.weights_bytes + rec.kv_cache_bytes + rec.compute_bytes + (
        rec.overhead_bytes
    )
    assert rec.reason.endswith(".") and r.reason.endswith(".")


@pytest.mark.parametrize("name", EXAMPLES)
def test_a_comfortable_option_on_the_accelerator_wins_when_one_exists(rankings, name):
    """Quality within what runs well (tests/test_speed_ranking.py checks the scores)."""
    r = rankings[name]
    if any(tier(p) == 0 for p in r.options):
        rec = r.recommended
        assert tier(rec) == 0 and rec.mode == "gpu" and rec.ctx >= REASONING_CTX and rec.usable


@pytest.mark.parametrize("name", EXAMPLES)
def test_no_distill_below_q3_is_recommended(rankings, name):
    rec = rankings[name].recommended
    assert allowed(rec)
    assert not (rec.distill and rec.quant in ("Q2_K",))


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_option_stays_visible_with_its_verdict(rankings, name):
    r = rankings[name]
    n_quants = sum(len(m.quant_names) for m in load_catalog().models)
    assert len(r.options) == n_quants
    assert r.options[0] is r.recommended
    assert all(p.mode in ("gpu", "hybrid", "cpu", "server", "no") and p.reason for p in r.options)


@pytest.mark.parametrize("name", [n for n in EXAMPLES if "mac" in n])
def test_apple_silicon_with_mlx_gets_mlx_weights(rankings, name):
    assert rankings[name].recommended.format == "mlx"
    assert rankings[name].recommended.engine == "mlx"


def test_recommendations_read_sensibly(rankings):
    rec = {n: (r.recommended.model, r.recommended.mode) for n, r in rankings.items()}
    assert rec["server-8x-h100"][0].startswith("deepseek-r1-0528")
    assert rec["mac-studio-m3-ultra-512gb"] == ("deepseek-r1-0528", "gpu")
    # R1-0528-Qwen3-8B (AIME 2024 86.0) beats every distill and runs on one GPU
    for name in (
        "workstation-2x-rtx3090",
        "desktop-rtx4090-64gb",
        "desktop-rtx5090-64gb",
        "laptop-rtx4060-8gb",
        "macbook-pro-m2-max-64gb",
        "macbook-air-m2-16gb",
    ):
        assert rec[name] == ("deepseek-r1-0528-qwen3-8b", "gpu"), name
    assert rec["laptop-8gb-no-gpu"] == ("deepseek-r1-distill-qwen-7b", "cpu")
    assert "higher-scoring" in rankings["laptop-8gb-no-gpu"].reason  # says why not the better


def test_ranking_restricted_to_one_model():
    r = rank(example("desktop-rtx4090-64gb"), model_ids=["deepseek-r1-distill-qwen-7b"])
    assert {p.model for p in r.options} == {"deepseek-r1-distill-qwen-7b"}
    assert r.recommended.quant == "Q4_K_M"


def test_nothing_fits_a_tiny_machine():
    tiny = HardwareProfile("linux", CpuInfo("x", 1, 1), RamInfo(2 * GIB, GIB))
    r = rank(tiny)
    assert r.recommended is None and "Nothing in the catalog" in r.reason


def test_measured_speed_calibrates_every_prediction():
    from app.core.planner import plan_option

    profile = read_hardware_file(PROFILES / "desktop-rtx4090-64gb.json")
    plain = plan_option(profile, "deepseek-r1-distill-qwen-14b", "Q4_K_M", ctx=16384)
    slower = plan_option(profile, "deepseek-r1-distill-qwen-14b", "Q4_K_M", ctx=16384,
                         speed_scale=0.5)  # fmt: skip
    assert slower.decode_tps == pytest.approx(plain.decode_tps * 0.5)
    assert slower.answer_seconds > plain.answer_seconds * 1.5
    assert slower.total_bytes == plain.total_bytes  # memory is not a speed
    wild = plan_option(profile, "deepseek-r1-distill-qwen-14b", "Q4_K_M", ctx=16384,
                       speed_scale=100.0)  # fmt: skip
    assert wild.decode_tps == pytest.approx(plain.decode_tps * 4.0)  # clamped


def test_a_measured_thinking_length_replaces_the_catalogs_for_that_model_only():
    profile = example("desktop-rtx4090-64gb")
    fourteen = "deepseek-r1-distill-qwen-14b"
    plain = plan_option(profile, fourteen, "Q4_K_M", ctx=16384)
    measured = plan_option(profile, fourteen, "Q4_K_M", ctx=16384, thinking={fourteen: 3600})
    assert plain.answer_tokens == 1200 + 300 and not plain.thinking_measured
    assert measured.answer_tokens == 3600 + 300 and measured.thinking_measured
    assert measured.answer_seconds > plain.answer_seconds * 2.2  # 2.6× the tokens
    assert "(3,900 tokens, from your answers)" in measured.reason
    assert "from your answers" not in plain.reason
    assert measured.hard_answer_tokens == plain.hard_answer_tokens  # a hard problem: catalog's
    assert measured.to_dict()["thinking_measured"] is True
    # another model's figure changes nothing here
    other = plan_option(profile, fourteen, "Q4_K_M", ctx=16384,
                        thinking={"deepseek-r1-distill-qwen-7b": 3600})  # fmt: skip
    assert other == plain


def test_the_ranking_plans_with_measured_thinking_and_its_reason_says_so():
    profile = example("desktop-rtx4090-64gb")
    plain = rank(profile)
    top = plain.recommended
    ranked = rank(profile, thinking={top.model: 6000})
    assert ranked.recommended.model == top.model and ranked.recommended.quant == top.quant
    catalog_thinking = load_catalog().get(top.model).thinking_tokens
    assert ranked.recommended.answer_tokens == top.answer_tokens - catalog_thinking + 6000
    assert ranked.recommended.answer_seconds > top.answer_seconds * 2
    assert "(its thinking length from your answers)" in ranked.reason
    assert "from your answers" not in plain.reason
    before = {(p.model, p.quant): p for p in plain.options}
    for p in ranked.options:
        assert p.thinking_measured == (p.model == top.model)
        if p.model != top.model:
            assert p == before[p.model, p.quant]


# ---------------------------------------------------------------- KV layout and free memory


def test_legacy_r1_files_cache_full_keys_and_values():
    arch = load_catalog().get("deepseek-r1").arch
    per_token = kv_bytes_per_token(arch, "f16", layout="legacy")
    assert per_token == 61 * 128 * (192 + 128) * 2  # 4.77 MiB
    assert per_token / 1024**2 == pytest.approx(4.77, abs=0.01)
    assert kv_cache_bytes(arch, 16384, layout="legacy") / 1e9 == pytest.approx(82, abs=0.5)
    assert per_token / kv_bytes_per_token(arch, "f16") == pytest.approx(71, abs=0.5)


def test_a_legacy_r1_plan_has_no_flash_attention_and_its_scores_buffer():
    legacy = plan_option(example("server-8x-h100"), "deepseek-r1", "UD-IQ1_S", ctx=16384)
    assert legacy.kv_cache_bytes == pytest.approx(81.9e9, rel=0.01)
    assert not legacy.flash_attn and legacy.load_settings()["flash_attn"] is False
    # 128 heads × 16K × 512 × 4 bytes of attention scores on each GPU, as llama.cpp reserves
    assert legacy.compute_bytes >= 8 * 128 * 16384 * 512 * 4
    mla = plan_option(example("server-8x-h100"), "deepseek-r1-0528", "UD-IQ1_S", ctx=16384)
    assert mla.flash_attn and mla.kv_cache_bytes < 1.2e9
    q8 = plan_option(example("server-8x-h100"), "deepseek-r1", "UD-IQ1_S", ctx=16384,
                     kv_type="q8_0")  # fmt: skip
    assert q8.mode == "no" and "V cache cannot be quantized" in q8.reason


@pytest.mark.parametrize(
    ("box", "model", "quant"),
    [
        (lambda: cuda_box(80, 512, n=2), "deepseek-r1", "UD-IQ1_S"),  # needed ~224 GB of 172
        (lambda: example("mac-studio-m3-ultra-512gb"), "deepseek-r1", "Q4_K_M"),
    ],
)  # fmt: skip
def test_legacy_r1_no_longer_fits_where_its_cache_does_not(box, model, quant):
    plan = plan_option(box(), model, quant, ctx=16384)
    assert plan.mode != "gpu"
    assert plan.vram_bytes <= budget_for(box()).gpu_total_bytes


def laptop_4060() -> HardwareProfile:
    gpu = GpuInfo("nvidia", "NVIDIA GeForce RTX 4060 Laptop GPU", 8 * GIB, int(8.07e9), 256.0,
                  "table", True, 0)  # fmt: skip
    return HardwareProfile("linux", CpuInfo("i7", 8, 16, (), 60.0), RamInfo(32 * GIB, 28 * GIB),
                           (gpu,), engines=EngineSupport(True, True))  # fmt: skip


def test_the_gpu_budget_is_the_free_memory_and_the_words_show_the_total():
    b = budget_for(laptop_4060())
    assert b.gpu_bytes == (int(8.07e9),) and b.gpu_installed_bytes == (8 * GIB,)
    assert b.describe_gpu_memory() == "8.1 GB free of 8.6 GB"
    for name in EXAMPLES:
        profile = example(name)
        for p in rank(profile).options:
            assert p.vram_bytes <= budget_for(profile).gpu_total_bytes
    plan = plan_option(laptop_4060(), "deepseek-r1-0528-qwen3-8b", "Q4_K_M", ctx=16384)
    assert plan.vram_bytes <= 8.07e9
    if plan.mode == "gpu":
        assert "free of 8.6 GB" in plan.reason
