"""Every catalog download against the repo's recorded Hub listing (tests/data/hub_listings):
planned with Ponder's real `plan_download` through the real huggingface_hub client on the
local Hub, so a wrong file name, folder, repo or MLX pattern fails here; an MLX download of a
2025 mlx-community repo with its real file list runs end to end; and `ponder-cli catalog
check` finds the mistakes the catalog used to have."""

from __future__ import annotations

import copy
import json
import tomllib

import pytest

from app.cli import main
from app.commands.catalog_check import (
    LISTINGS_DIR,
    ListedFile,
    Listing,
    check_against_listings,
    compare_listings,
    load_listings,
    wanted_downloads,
)
from app.core.catalog import (
    CATALOG_PATH,
    MLX_OPTIONAL_PATTERNS,
    MLX_PATTERNS,
    find_source,
    load_catalog,
    parse_catalog,
)
from app.core.downloads import download, plan_download, plan_for_source
from hub_fixtures import FAST, serve_listing, serve_listing_with_content

LISTINGS = load_listings()
WANTED = wanted_downloads(load_catalog())
MLX_2025 = "mlx-community/DeepSeek-R1-Distill-Qwen-7B-3bit"


def raw_listing(repo: str) -> dict:
    return json.loads((LISTINGS_DIR / (repo.replace("/", "__") + ".json")).read_text())


def test_every_listing_says_where_it_came_from_and_when():
    assert len(LISTINGS) >= 50
    for listing in LISTINGS.values():
        assert listing.source and listing.read == "2026-12-02", listing.repo
        assert all(f.size > 0 and f.size_kind in ("exact", "rounded", "estimated")
                   for f in listing.files), listing.repo  # fmt: skip


def test_every_catalog_repo_has_a_recorded_listing():
    assert {w.repo for w in WANTED} <= set(LISTINGS)


@pytest.fixture(scope="module")
def listed_hub():
    from hubserver import HubServer

    server = HubServer()
    for repo in {w.repo for w in WANTED}:
        serve_listing(server, raw_listing(repo))
    try:
        yield server
    finally:
        server.close()


@pytest.mark.parametrize("w", WANTED, ids=lambda w: f"{w.model}:{w.quant}")
def test_every_catalog_quant_plans_against_its_listing(listed_hub, hf_cache, w):
    plan = plan_download(w.repo, w.files, w.patterns, endpoint=listed_hub.url,
                         cache_dir=hf_cache, token=False, policy=FAST)  # fmt: skip
    names = {f.path for f in plan.files}
    if w.files:
        assert names == set(w.files)
        assert plan.main_file == sorted(w.files)[0]
    else:
        assert {"config.json", "tokenizer.json", "tokenizer_config.json"} <= names
        assert any(n.startswith("model") and n.endswith(".safetensors") for n in names)
        assert "README.md" not in names and ".gitattributes" not in names


def test_the_offline_check_finds_no_problem_in_the_shipped_catalog():
    assert check_against_listings(load_catalog(), LISTINGS) == []


def _catalog_with(edit) -> object:
    with open(CATALOG_PATH, "rb") as f:
        data = tomllib.load(f)
    data = copy.deepcopy(data)
    edit(data["models"])
    return parse_catalog(data)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # the names the catalog had before they were checked against the listings
        (lambda m: m["deepseek-r1"]["sources"][0]["quants"]["Q8_0"].pop("split_pattern"),
         "DeepSeek-R1-Q8_0/DeepSeek-R1-Q8_0-00001-of-00015.gguf"),
        (lambda m: m["deepseek-r1-distill-qwen-1_5b"]["sources"][0]["quants"].update(F16=3.56)
         or m["deepseek-r1-distill-qwen-1_5b"]["sources"].pop(1),
         "DeepSeek-R1-Distill-Qwen-1.5B-F16.gguf"),
        (lambda m: m["deepseek-r1-0528-qwen3-8b"]["sources"][0]["quants"].update(
            F16=m["deepseek-r1-0528-qwen3-8b"]["sources"][0]["quants"].pop("BF16")),
         "DeepSeek-R1-0528-Qwen3-8B-F16.gguf"),
        (lambda m: m["deepseek-r1-distill-qwen-32b"]["sources"][1]["quants"]["8bit"].pop("repo"),
         "mlx-community/DeepSeek-R1-Distill-Qwen-32B-8bit"),
        (lambda m: m["deepseek-r1-distill-llama-70b"]["sources"][1]["quants"]["bf16"].pop(
            "repo"), "mlx-community/DeepSeek-R1-Distill-Llama-70B-bf16"),
        (lambda m: m["deepseek-r1-0528"]["sources"][1]["estimate"].append("3bit"),
         "mlx-community/DeepSeek-R1-0528-3bit"),
        (lambda m: m["deepseek-r1-distill-qwen-7b"]["sources"][0]["quants"].update(
            Q4_K_M=5.2), "the catalog says 5.20 GB, the listing 4.68 GB"),
    ],
)  # fmt: skip
def test_the_check_finds_each_wrong_name_the_catalog_used_to_have(edit, expected):
    problems = check_against_listings(_catalog_with(edit), LISTINGS)
    assert any(expected in p for p in problems), problems


def test_the_old_mlx_patterns_fail_on_a_2025_mlx_community_listing():
    listing = LISTINGS[MLX_2025]
    old = ("*.safetensors", "*.json", "*.jinja", "tokenizer.model")
    assert [p for p in old if not listing.matching(p)] == ["*.jinja", "tokenizer.model"]
    assert all(listing.matching(p) for p in MLX_PATTERNS)
    assert not any(listing.matching(p) for p in MLX_OPTIONAL_PATTERNS)  # optional: none there


def test_an_mlx_download_of_a_2025_repo_with_its_real_file_list_succeeds(hub, hf_cache):
    listing = raw_listing(MLX_2025)
    assert {f["path"] for f in listing["files"]} == {
        ".gitattributes", "README.md", "config.json", "model.safetensors",
        "model.safetensors.index.json", "special_tokens_map.json", "tokenizer.json",
        "tokenizer_config.json"}  # fmt: skip
    commit = serve_listing_with_content(hub, listing)
    source = find_source("deepseek-r1-distill-qwen-7b", "3bit")
    assert source.repo == MLX_2025
    plan = plan_for_source(source, endpoint=hub.url, cache_dir=hf_cache, token=False,
                           policy=FAST)  # fmt: skip
    result = download(plan, endpoint=hub.url, cache_dir=hf_cache, token=False, policy=FAST)
    assert result.status == "complete" and plan.commit == commit
    got = {p.name for p in result.snapshot.iterdir()}
    assert got == {
        "config.json",
        "model.safetensors",
        "model.safetensors.index.json",
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
    }


def test_an_optional_chat_template_comes_along_when_a_repo_has_one(hub, hf_cache):
    listing = raw_listing(MLX_2025)
    listing["files"].append({"path": "chat_template.jinja", "size": 10, "sha256": None})
    serve_listing_with_content(hub, listing)
    plan = plan_for_source(find_source("deepseek-r1-distill-qwen-7b", "3bit"),
                           endpoint=hub.url, cache_dir=hf_cache, token=False)  # fmt: skip
    assert "chat_template.jinja" in {f.path for f in plan.files}


def test_comparing_a_live_listing_names_what_changed():
    a, b, c = (
        ListedFile("a.gguf", 100, "estimated"),
        ListedFile("b.gguf", 1000, "exact", "aa" * 32),
        ListedFile("c.gguf", 5, "exact"),
    )
    rec = Listing("o/r", (a, b, c), commit="1" * 40)
    live = Listing(
        "o/r",
        (
            ListedFile("a.gguf", 120, "exact"),
            ListedFile("b.gguf", 1000, "exact", "bb" * 32),
            ListedFile("d.gguf", 7, "exact"),
        ),
        commit="2" * 40,
    )
    changes = compare_listings(rec, live)
    assert any("now at commit 222222222222" in c for c in changes)
    assert any("a.gguf is 120 bytes (estimated 100)" in c for c in changes)
    assert any("b.gguf has new content" in c for c in changes)
    assert any("c.gguf is gone" in c for c in changes)
    assert any("files not recorded: d.gguf" in c for c in changes)
    assert compare_listings(rec, rec) == []


def test_cli_catalog_check_offline(capsys):
    assert main(["catalog", "check"]) == 0
    out = capsys.readouterr().out
    assert "no problems" in out and f"{len(WANTED)} catalog downloads" in out


def test_cli_catalog_check_reports_a_missing_listing(capsys, tmp_path):
    for path in LISTINGS_DIR.glob("*.json"):
        if "DeepSeek-R1-GGUF" not in path.name:
            (tmp_path / path.name).write_text(path.read_text())
    assert main(["catalog", "check", "--listings", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "no recorded listing for unsloth/DeepSeek-R1-GGUF" in out
