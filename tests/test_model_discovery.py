"""Finding GGUF models other tools already downloaded, laid out exactly as those tools do:
the Hugging Face cache (blobs + snapshot symlinks), LM Studio (publisher/repo folders) and
Ollama (manifests naming sha256 blobs). Also split files, the added list, deleting without
touching shared blobs, and verifying against the store's checksums."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from app.core import model_discovery as md
from app.core.model_stats import ModelStats

COMMIT = "a" * 40


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_hf_cache(
    root: Path,
    model: Path,
    repo: str = "unsloth/Tiny-R1-GGUF",
    name: str = "Tiny-R1-Q4_K_M.gguf",
    commits: tuple[str, ...] = (COMMIT,),
) -> Path:
    """`models--org--name/{blobs/<sha256>, snapshots/<commit>/<file> -> ../../blobs/…, refs}`."""
    folder = root / ("models--" + repo.replace("/", "--"))
    digest = sha256(model)
    (folder / "blobs").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model, folder / "blobs" / digest)
    for commit in commits:
        snap = folder / "snapshots" / commit
        snap.mkdir(parents=True, exist_ok=True)
        os.symlink(f"../../blobs/{digest}", snap / name)
        (snap / "config.json").write_text("{}")
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / "main").write_text(commits[-1])
    return folder


def make_lmstudio(root: Path, model: Path) -> Path:
    """LM Studio 0.3: `~/.lmstudio/models/<publisher>/<repo>/<file>.gguf`."""
    folder = root / "lmstudio-community" / "DeepSeek-R1-Distill-Qwen-7B-GGUF"
    folder.mkdir(parents=True)
    target = folder / "DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf"
    shutil.copyfile(model, target)
    return target


def make_ollama(root: Path, model: Path, tags: tuple[str, ...] = ("7b",)) -> Path:
    """Ollama: `manifests/registry.ollama.ai/library/<model>/<tag>` -> `blobs/sha256-<hex>`."""
    blobs = root / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    digest = sha256(model)
    blob = blobs / f"sha256-{digest}"
    shutil.copyfile(model, blob)
    config = json.dumps({"model_format": "gguf", "model_family": "qwen2",
                         "file_type": "Q4_K_M"}).encode()  # fmt: skip
    config_digest = hashlib.sha256(config).hexdigest()
    (blobs / f"sha256-{config_digest}").write_bytes(config)
    template = b"{{ .Prompt }}"
    template_digest = hashlib.sha256(template).hexdigest()
    (blobs / f"sha256-{template_digest}").write_bytes(template)
    for tag in tags:
        manifest = root / "manifests" / "registry.ollama.ai" / "library" / "deepseek-r1" / tag
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text(json.dumps({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "digest": f"sha256:{config_digest}", "size": len(config)},
            "layers": [
                {"mediaType": "application/vnd.ollama.image.model",
                 "digest": f"sha256:{digest}", "size": blob.stat().st_size},
                {"mediaType": "application/vnd.ollama.image.template",
                 "digest": f"sha256:{template_digest}", "size": len(template)},
            ],
        }))  # fmt: skip
    return blob


@pytest.fixture
def stores(tmp_path, scripted_models):
    hf = tmp_path / "hf" / "hub"
    lm = tmp_path / "lmstudio" / "models"
    ol = tmp_path / "ollama" / "models"
    make_hf_cache(hf, scripted_models.preopen)
    make_lmstudio(lm, scripted_models.plain)
    make_ollama(ol, scripted_models.no_template)
    return {"hf_cache": hf, "lmstudio": [lm], "ollama": [ol],
            "added_list": tmp_path / "added.json"}  # fmt: skip


def test_finds_a_gguf_in_each_store_with_its_metadata(stores):
    found = md.discover_models(**stores, last_used={})
    by_source = {m.source: m for m in found}
    assert set(by_source) == {"hf-cache", "lmstudio", "ollama"}
    hf = by_source["hf-cache"]
    assert hf.origin == "unsloth/Tiny-R1-GGUF" and hf.name == "Tiny-R1"
    assert hf.architecture == "llama" and hf.has_chat_template and hf.problem is None
    assert hf.path.is_symlink() and hf.key == os.path.realpath(hf.path)
    lm = by_source["lmstudio"]
    assert lm.origin == "lmstudio-community/DeepSeek-R1-Distill-Qwen-7B-GGUF"
    assert lm.name == "DeepSeek-R1-Distill-Qwen-7B"
    assert lm.quant == "F32"  # the header's file type wins over the file name
    ol = by_source["ollama"]
    assert ol.name == "deepseek-r1:7b" and ol.path.name.startswith("sha256-")
    assert ol.quant == "F32"  # the header's; Ollama's config blob is the fallback
    assert md._ollama_config_quant(ol.path.parent.parent, ol.manifest) == "Q4_K_M"
    assert not ol.has_chat_template and ol.manifest is not None
    assert all(m.size_bytes > 0 for m in found)


def test_the_same_blob_in_two_snapshots_is_listed_once(tmp_path, scripted_models):
    hf = tmp_path / "hub"
    make_hf_cache(hf, scripted_models.preopen, commits=("a" * 40, "b" * 40))
    found = md.discover_models(hf_cache=hf, lmstudio=[], ollama=[],
                               added_list=tmp_path / "none.json", last_used={})  # fmt: skip
    assert len(found) == 1


def test_last_used_orders_the_list(stores):
    first = md.discover_models(**stores, last_used={})
    ollama = next(m for m in first if m.source == "ollama")
    again = md.discover_models(**stores, last_used={ollama.key: 1e9})
    assert again[0].key == ollama.key and again[0].last_used == 1e9


def test_a_broken_file_is_listed_with_its_problem(tmp_path, scripted_models):
    lm = tmp_path / "lm"
    folder = lm / "pub" / "repo"
    folder.mkdir(parents=True)
    (folder / "broken-Q4_K_M.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 20)
    [m] = md.scan_lmstudio(lm)
    assert m.problem and ("corrupt" in m.problem or "cut short" in m.problem)


def test_split_gguf_needs_all_parts(tmp_path, scripted_models):
    lm = tmp_path / "lm" / "pub" / "repo"
    lm.mkdir(parents=True)
    for i in (1, 2):
        shutil.copyfile(scripted_models.preopen, lm / f"Big-Q4_K_M-0000{i}-of-00003.gguf")
    assert md.group_gguf_files(lm.iterdir()) == []
    shutil.copyfile(scripted_models.preopen, lm / "Big-Q4_K_M-00003-of-00003.gguf")
    [group] = md.group_gguf_files(lm.iterdir())
    assert [p.name[-19:] for p in group] == [f"0000{i}-of-00003.gguf" for i in (1, 2, 3)]


def test_added_files_are_remembered_and_a_broken_one_refused(tmp_path, scripted_models):
    added = tmp_path / "added.json"
    m = md.add_local_model(scripted_models.preopen, added)
    assert m.source == "added" and m.path == scripted_models.preopen.resolve()
    md.add_local_model(scripted_models.preopen, added)  # once only
    assert md.added_files(added) == [scripted_models.preopen.resolve()]
    [listed] = md.scan_added(added)
    assert listed.key == m.key
    with pytest.raises(ValueError):
        md.add_local_model(scripted_models.corrupt["truncated"], added)
    assert md.forget_added(scripted_models.preopen, added)
    assert md.scan_added(added) == []


def test_deleting_an_hf_model_keeps_blobs_other_snapshots_use(tmp_path, scripted_models):
    hf = tmp_path / "hub"
    folder = make_hf_cache(hf, scripted_models.preopen, commits=("a" * 40, "b" * 40))
    snaps = {m.path.parent.name: m for m in md.scan_hf_cache(hf)}
    older = snaps["a" * 40]
    assert md.freeable_bytes(older) == 0  # the other snapshot still points at the blob
    assert md.delete_model(older) == 0
    assert not (folder / "snapshots" / ("a" * 40)).exists()
    [newer] = md.scan_hf_cache(hf)
    size = newer.size_bytes
    assert md.freeable_bytes(newer) == size
    assert md.delete_model(newer) == size
    assert not folder.exists()


def test_deleting_an_ollama_tag_keeps_blobs_another_tag_uses(tmp_path, scripted_models):
    root = tmp_path / "ollama"
    blob = make_ollama(root, scripted_models.preopen, tags=("7b", "latest"))
    seven, latest = sorted(md.scan_ollama(root), key=lambda m: m.name)
    assert md.freeable_bytes(seven) == 0
    with pytest.raises(ValueError, match="not a Ponder download"):
        md.delete_model(seven)  # Ollama's: only when its store is asked for by name
    assert seven.manifest.exists()
    md.delete_model(seven, other_tool=True)
    assert blob.exists() and not seven.manifest.exists()
    [left] = md.scan_ollama(root)
    size = blob.stat().st_size
    assert md.freeable_bytes(left) == size
    assert md.delete_model(left, other_tool=True) > size  # the blob, its config and template
    assert not blob.exists()
    assert not list((root / "blobs").iterdir())  # config and template blobs went too
    assert not (root / "manifests" / "registry.ollama.ai" / "library").exists()


def test_verify_checks_every_byte_where_the_store_names_blobs_by_hash(stores):
    found = {m.source: m for m in md.discover_models(**stores, last_used={})}
    ok, text = md.verify_model(found["hf-cache"])
    assert ok and "every byte" in text
    ok, text = md.verify_model(found["lmstudio"])
    assert ok and "header" in text
    blob = Path(os.path.realpath(found["ollama"].path))
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF  # same size, one byte flipped
    blob.write_bytes(bytes(data))
    ok, text = md.verify_model(found["ollama"])
    assert not ok and "damaged" in text


def test_default_last_used_comes_from_the_stats_file(stores, tmp_path, monkeypatch):
    monkeypatch.setenv("PONDER_DATA_DIR", str(tmp_path / "data"))
    found = md.discover_models(**stores, last_used={})
    ModelStats().touch(found[-1].path, "x")
    again = md.discover_models(**stores)
    assert again[0].key == found[-1].key and again[0].last_used


def test_lmstudio_moved_folder_is_found(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    moved = tmp_path / "elsewhere"
    (tmp_path / ".lmstudio").mkdir()
    (tmp_path / ".lmstudio" / "settings.json").write_text(json.dumps({"downloadsFolder":
                                                                      str(moved)}))  # fmt: skip
    assert md.lmstudio_dirs()[0] == moved
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "ol"))
    assert md.ollama_dirs() == [tmp_path / "ol"]
