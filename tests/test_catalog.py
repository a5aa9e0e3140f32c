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
    assert mlx.format == "mlx" and "4bit" in mlx.repo and "model*.safetensors" in mlx.patterns
    # what mlx-lm loads is required; chat templates come along when a repo has them
    assert {"config.json", "tokenizer.json", "tokenizer_config.json"} <= set(mlx.patterns)
    assert "*.jinja" not in mlx.patterns and "tokenizer.model" not in mlx.patterns
    assert mlx.optional_patterns == ("*.jinja",)
    split = find_source("deepseek-r1", "UD-IQ1_S")
    assert len(split.files) > 1 and all("UD-IQ1_S" in f for f in split.files)
    with pytest.raises(CatalogError, match="Say which quant"):
        find_source("deepseek-r1", None)


def test_repos_the_collection_names_differently_are_named_per_quant():
    cat = load_catalog()
    assert find_repo(cat, "deepseek-r1-distill-qwen-32b", "8bit") == (
        "mlx-community/DeepSeek-R1-Distill-Qwen-32B-MLX-8Bit"
    )
    assert find_repo(cat, "deepseek-r1-distill-llama-70b", "bf16") == (
        "mlx-community/DeepSeek-R1-Distill-Llama-70B"
    )
    assert find_repo(cat, "deepseek-r1-distill-qwen-32b", "4bit").endswith("-32B-4bit")
    # no evidence for these conversions: not in the catalog
    assert "3bit" not in cat.get("deepseek-r1-0528-qwen3-8b").quant_names
    assert "3bit" not in cat.get("deepseek-r1-0528").quant_names


def find_repo(cat, model_id: str, quant: str) -> str:
    source, q = cat.get(model_id).find_quant(quant)
    return source.repo_for(q.name)


def test_exact_hub_names_of_the_r1_family():
    cat = load_catalog()
    _, q8 = cat.get("deepseek-r1").find_quant("Q8_0")
    assert q8.files[0] == "DeepSeek-R1-Q8_0/DeepSeek-R1.Q8_0-00001-of-00015.gguf"
    assert len(q8.files) == 15
    source, f16 = cat.get("deepseek-r1-distill-qwen-1.5b").find_quant("F16")
    assert source.repo == "bartowski/DeepSeek-R1-Distill-Qwen-1.5B-GGUF"
    assert f16.files == ("DeepSeek-R1-Distill-Qwen-1.5B-f16.gguf",)
    _, bf16 = cat.get("deepseek-r1-0528-qwen3-8b").find_quant("BF16")
    assert bf16.files == ("DeepSeek-R1-0528-Qwen3-8B-BF16.gguf",)
    assert "F16" not in cat.get("deepseek-r1-0528-qwen3-8b").quant_names


def test_r1_gguf_sources_say_their_kv_layout():
    cat = load_catalog()
    layouts = {s.repo: s.kv_layout for m in ("deepseek-r1", "deepseek-r1-0528")
               for s in cat.get(m).sources if s.format == "gguf"}  # fmt: skip
    assert layouts == {"unsloth/DeepSeek-R1-GGUF": "legacy", "bartowski/DeepSeek-R1-GGUF": "legacy",
                       "unsloth/DeepSeek-R1-0528-GGUF": "mla"}  # fmt: skip
    assert all(s.kv_layout == "" for s in cat.get("deepseek-r1-distill-qwen-7b").sources)


def test_a_gguf_source_of_an_mla_model_must_say_its_layout():
    data = raw()
    data["models"]["deepseek-r1"]["sources"][0].pop("kv_layout")
    with pytest.raises(CatalogError, match="kv_layout"):
        parse_catalog(data)
    data = raw()
    data["models"]["deepseek-r1"]["sources"][0]["kv_layout"] = "latent"
    with pytest.raises(CatalogError, match="kv_layout 'latent'"):
        parse_catalog(data)


def test_config_numbers_that_were_wrong():
    cat = load_catalog()
    assert cat.get("deepseek-r1-distill-qwen-1.5b").arch.tied_embeddings is False
    assert cat.get("qwq-32b").arch.max_ctx == 40960
