"""The model catalog: the shipped TOML loads, its numbers match the published configs, and a
broken catalog or a bad request is refused with a sentence."""

from __future__ import annotations

import copy
import tomllib

import pytest

from app.core.catalog import CATALOG_PATH, CatalogError, load_catalog, parse_catalog
from app.core.planner.memory import kv_bytes_per_token

KIB = 1024


def raw() -> dict:
    with open(CATALOG_PATH, "rb") as f:
        return tomllib.load(f)


def test_catalog_lists_the_r1_family_and_another_reasoning_family():
    ids = load_catalog().ids
    for model_id in ("deepseek-r1-distill-qwen-1.5b", "deepseek-r1-distill-qwen-7b",
                     "deepseek-r1-distill-llama-8b", "deepseek-r1-distill-qwen-14b",
                     "deepseek-r1-distill-qwen-32b", "deepseek-r1-distill-llama-70b",
                     "deepseek-r1-0528-qwen3-8b", "deepseek-r1", "deepseek-r1-0528",
                     "qwq-32b", "qwen3-8b"):  # fmt: skip
        assert model_id in ids
    assert all(i == i.lower() for i in ids)


@pytest.mark.parametrize(
    ("model_id", "kib"),
    [("deepseek-r1-distill-qwen-1.5b", 28), ("deepseek-r1-distill-qwen-7b", 56),
     ("deepseek-r1-distill-llama-8b", 128), ("deepseek-r1-distill-qwen-14b", 192),
     ("deepseek-r1-distill-qwen-32b", 256), ("deepseek-r1-distill-llama-70b", 320),
     ("deepseek-r1-0528-qwen3-8b", 144)],
)  # fmt: skip
def test_distill_kv_per_token_matches_the_published_architecture(model_id, kib):
    arch = load_catalog().get(model_id).arch
    assert kv_bytes_per_token(arch, "f16") == kib * KIB
    assert arch.max_ctx == 131072 and arch.head_dim == 128


def test_full_r1_has_moe_and_mla_numbers():
    m = load_catalog().get("deepseek-r1")
    a = m.arch
    assert (a.layers, a.hidden, a.vocab, a.max_ctx) == (61, 7168, 129280, 163840)
    assert (a.experts, a.experts_per_token, a.expert_ffn, a.dense_layers) == (256, 8, 2048, 3)
    assert (a.kv_lora_rank, a.qk_rope_head_dim) == (512, 64)
    assert m.active_params_b == 37 and m.license == "MIT"
    assert m.sampling == {"temperature": 0.6, "top_p": 0.95, "system_prompt": False}


def test_sizes_are_gb_and_split_quants_name_every_part():
    cat = load_catalog()
    _, q = cat.get("deepseek-r1-distill-qwen-7b").find_quant("Q4_K_M")
    assert q.size_bytes == 4_680_000_000 and q.files == ("DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf",)
    _, q = cat.get("deepseek-r1").find_quant("UD-IQ1_S")
    assert q.size_bytes == 140_200_000_000
    assert q.files == tuple(
        f"DeepSeek-R1-UD-IQ1_S/DeepSeek-R1-UD-IQ1_S-0000{i}-of-00003.gguf" for i in (1, 2, 3)
    )
    _, q = cat.get("deepseek-r1-distill-llama-70b").find_quant("Q6_K")
    assert q.parts == 2 and q.files[1].endswith("-00002-of-00002.gguf")


def test_mlx_sources_name_a_repo_per_quant_and_estimate_sizes_from_bits():
    m = load_catalog().get("deepseek-r1-distill-qwen-7b")
    source, q = m.find_quant("4bit")
    assert source.format == "mlx" and source.repo_for("4bit") == (
        "mlx-community/DeepSeek-R1-Distill-Qwen-7B-4bit"
    )
    assert q.size_source == "estimated"
    assert q.size_bytes == pytest.approx(7.62e9 * 4.5 / 8, rel=1e-6)
    _, q3 = m.find_quant("3bit")
    assert q3.size_bytes == 3_330_000_000 and q3.size_source == "catalog"


def test_unknown_model_suggests_the_closest_ids():
    with pytest.raises(CatalogError, match="deepseek-r1-distill-qwen-7b") as info:
        load_catalog().get("deepseek-r1-distil-qwen-7b")
    assert str(info.value).endswith(".")


def test_unknown_quant_lists_the_quants_there_are():
    with pytest.raises(CatalogError, match="has no quant 'Q4_0'.*Q4_K_M"):
        load_catalog().get("deepseek-r1-distill-qwen-7b").find_quant("Q4_0")


def test_quant_lookup_ignores_case():
    _, q = load_catalog().get("DeepSeek-R1-Distill-Qwen-7B").find_quant("q4_k_m")
    assert q.name == "Q4_K_M"


def _broken(edit) -> dict:
    data = copy.deepcopy(raw())
    edit(data)
    return data


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("schema"), "schema"),
        (lambda d: d["models"]["deepseek-r1-distill-qwen-7b"]["arch"].pop("kv_heads"), "kv_heads"),
        (lambda d: d["models"]["deepseek-r1"]["arch"].pop("kv_lora_rank"), "kv_lora_rank"),
        (lambda d: d["models"]["deepseek-r1-distill-qwen-7b"]["arch"].update(layers=0),
         "not positive"),
        (lambda d: d["models"]["deepseek-r1-distill-qwen-7b"]["sources"][0]["quants"].update(
            Q4_K_M="big"), "not a number"),
        (lambda d: d["models"]["deepseek-r1-distill-qwen-7b"]["sources"][0]["quants"].update(
            Q9_X=1.0), "bits per weight"),
        (lambda d: d["models"]["deepseek-r1-distill-qwen-7b"].pop("license"), "license"),
        (lambda d: d["models"]["deepseek-r1-distill-qwen-7b"]["sources"][0].update(
            format="onnx"), "format"),
        (lambda d: d["models"]["qwen3-8b"].update(id="deepseek-r1"), "twice"),
    ],
)  # fmt: skip
def test_broken_catalog_is_refused_with_the_entry_named(edit, message):
    with pytest.raises(CatalogError, match=message) as info:
        parse_catalog(_broken(edit))
    assert str(info.value).endswith(".")


def test_unreadable_catalog_file_is_a_catalog_error(tmp_path):
    bad = tmp_path / "catalog.toml"
    bad.write_text("schema = [")
    with pytest.raises(CatalogError, match="not valid TOML"):
        load_catalog(bad)
    with pytest.raises(CatalogError, match="cannot be read"):
        load_catalog(tmp_path / "missing.toml")


def test_find_source_gives_the_files_of_a_gguf_and_the_patterns_of_an_mlx_quant():
    from app.core.catalog import CatalogError, find_source

    gguf = find_source("deepseek-r1-distill-qwen-7b", "Q4_K_M")
    assert gguf.format == "gguf" and gguf.files[0].endswith("Q4_K_M.gguf") and not gguf.patterns
    mlx = find_source("deepseek-r1-distill-qwen-7b", "4bit")
    assert mlx.format == "mlx" and "4bit" in mlx.repo and "*.safetensors" in mlx.patterns
    split = find_source("deepseek-r1", "UD-IQ1_S")
    assert len(split.files) > 1 and all("UD-IQ1_S" in f for f in split.files)
    with pytest.raises(CatalogError, match="Say which quant"):
        find_source("deepseek-r1", None)
