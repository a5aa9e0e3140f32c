"""MLX models found on disk (#21): snapshot folders in a fake Hugging Face cache laid out as
the Hub writes them (LFS files named by sha256, small files by their git blob id, snapshot
symlinks) and folders in LM Studio's; their name, quant, size, thinking switch and, for an
incomplete folder, the problem in words; deleting and verifying one; and Auto with MLX
sides: the pair the window builds carries the MLX engine and never reads a GGUF header, and
a routine prompt is answered by a scripted MLX small model through the real engine."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from app.core import model_choice, model_removal
from app.core import model_discovery as md
from backends.mlx_check import MLX_INDEX
from scripted import QWEN3_TEMPLATE, TEMPLATE_PREOPEN

COMMIT = "c" * 40
ROOT = Path(__file__).resolve().parents[1]
MAC = ROOT / "resources" / "hardware_profiles" / "macbook-pro-m2-max-64gb.json"
LAPTOP = ROOT / "resources" / "hardware_profiles" / "laptop-8gb-no-gpu.json"


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def tiny_safetensors(rows: int = 8, fmt: str = "mlx") -> bytes:
    """A real safetensors file (one float32 tensor) as MLX writes it (metadata format)."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "w.safetensors"
        save_file({"lm_head.weight": np.ones((rows, 16), dtype=np.float32)}, str(path),
                  metadata={"format": fmt})  # fmt: skip
        return path.read_bytes()


def mlx_files(
    bits: int | None = 4,
    template: str | None = TEMPLATE_PREOPEN,
    shards: int = 1,
    model_type: str = "qwen2",
    ctx: int = 131072,
    fmt: str = "mlx",
    config_extra: dict | None = None,
) -> dict[str, bytes]:
    """The files of an mlx-community conversion: config, weights (sharded with an index
    when `shards` > 1), tokenizer and tokenizer config with the chat template."""
    config: dict[str, Any] = {
        "model_type": model_type,
        "architectures": ["Qwen2ForCausalLM"],
        "max_position_embeddings": ctx,
        "torch_dtype": "bfloat16",
    }
    if bits:
        config["quantization"] = {"group_size": 64, "bits": bits}
    config.update(config_extra or {})
    files = {"config.json": json.dumps(config).encode(), "tokenizer.json": b'{"version": "1.0"}'}
    if shards == 1:
        files["model.safetensors"] = tiny_safetensors(fmt=fmt)
    else:
        names = [f"model-{i:05d}-of-{shards:05d}.safetensors" for i in range(1, shards + 1)]
        for i, name in enumerate(names):
            files[name] = tiny_safetensors(rows=8 + i, fmt=fmt)
        weight_map = {f"layer{i}.weight": name for i, name in enumerate(names)}
        files[MLX_INDEX] = json.dumps({"metadata": {}, "weight_map": weight_map}).encode()
    tok_config: dict[str, Any] = {"tokenizer_class": "PreTrainedTokenizerFast"}
    if template is not None:
        tok_config["chat_template"] = template
    files["tokenizer_config.json"] = json.dumps(tok_config).encode()
    return files


def make_mlx_snapshot(cache: Path, repo: str, files: dict[str, bytes],
                      commit: str = COMMIT) -> Path:  # fmt: skip
    """`models--org--name/{blobs, snapshots/<commit>/<file> -> ../../blobs/<id>, refs/main}`:
    safetensors blobs named by sha256 (LFS), the rest by git blob id, as the Hub does."""
    folder = cache / ("models--" + repo.replace("/", "--"))
    snap = folder / "snapshots" / commit
    snap.mkdir(parents=True, exist_ok=True)
    (folder / "blobs").mkdir(exist_ok=True)
    for name, data in files.items():
        lfs = name.endswith(".safetensors")
        blob = hashlib.sha256(data).hexdigest() if lfs else git_blob_id(data)
        (folder / "blobs" / blob).write_bytes(data)
        os.symlink(f"../../blobs/{blob}", snap / name)
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / "main").write_text(commit)
    return snap


def make_mlx_folder(folder: Path, files: dict[str, bytes]) -> Path:
    """A plain folder of files (LM Studio's layout: `<publisher>/<repo>/`)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def scan(cache: Path) -> dict[str, md.FoundModel]:
    return {m.origin: m for m in md.scan_hf_cache(cache)}


# -- discovery ------------------------------------------------------------------------------
def test_an_mlx_snapshot_is_found_with_its_name_quant_size_and_thinking_switch(tmp_path):
    hf = tmp_path / "hub"
    files = mlx_files(4, QWEN3_TEMPLATE, model_type="qwen3", ctx=40960)
    qwen = make_mlx_snapshot(hf, "mlx-community/Qwen3-8B-4bit", files)
    r1 = make_mlx_snapshot(hf, "mlx-community/DeepSeek-R1-Distill-Qwen-7B-8bit",
                           mlx_files(8, TEMPLATE_PREOPEN, shards=2))  # fmt: skip
    found = scan(hf)
    assert set(found) == {"mlx-community/Qwen3-8B-4bit",
                          "mlx-community/DeepSeek-R1-Distill-Qwen-7B-8bit"}  # fmt: skip
    q = found["mlx-community/Qwen3-8B-4bit"]
    assert (q.name, q.quant, q.format, q.source) == ("Qwen3-8B", "4bit", "mlx", "hf-cache")
    assert q.path == qwen and q.key == os.path.realpath(qwen) and q.problem is None
    assert (q.architecture, q.context_length) == ("qwen3", 40960)
    assert q.has_chat_template and q.thinking_switch  # Qwen3's real template reads the switch
    assert q.size_bytes == (qwen / "model.safetensors").stat().st_size
    d = found["mlx-community/DeepSeek-R1-Distill-Qwen-7B-8bit"]
    assert (d.name, d.quant, d.architecture) == ("DeepSeek-R1-Distill-Qwen-7B", "8bit", "qwen2")
    assert d.has_chat_template and not d.thinking_switch and d.problem is None
    shards = sorted(r1.glob("model-*.safetensors"))
    assert len(shards) == 2 and d.size_bytes == sum(p.stat().st_size for p in shards)
    assert set(d.parts) == set(r1.iterdir())  # every file of the snapshot (for deleting)


def test_names_and_quants_come_from_the_repo_and_config(tmp_path):
    assert md.mlx_display_name("DeepSeek-R1-Distill-Qwen-32B-MLX-8Bit") == (
        "DeepSeek-R1-Distill-Qwen-32B"
    )
    assert md.mlx_display_name("Qwen3-8B-MLX-bf16") == "Qwen3-8B"
    assert md.mlx_display_name("DeepSeek-R1-Distill-Llama-70B") == "DeepSeek-R1-Distill-Llama-70B"
    assert md.mlx_quant_from_name("DeepSeek-R1-Distill-Qwen-32B-MLX-8Bit") == "8bit"
    assert md.mlx_quant_from_name("Qwen3-8B-bf16") == "bf16"
    assert md.mlx_quant_from_name("Qwen3-8B") is None
    hf = tmp_path / "hub"
    make_mlx_snapshot(hf, "mlx-community/DeepSeek-R1-Distill-Qwen-32B-MLX-8Bit", mlx_files(None))
    make_mlx_snapshot(hf, "mlx-community/DeepSeek-R1-Distill-Llama-70B", mlx_files(None))
    make_mlx_snapshot(hf, "someone/Renamed-3bit", mlx_files(6))  # config.json has the say
    found = scan(hf)
    assert found["mlx-community/DeepSeek-R1-Distill-Qwen-32B-MLX-8Bit"].quant == "8bit"
    assert found["mlx-community/DeepSeek-R1-Distill-Llama-70B"].quant == "bf16"  # its dtype
    assert found["someone/Renamed-3bit"].quant == "6bit"


def test_a_chat_template_file_is_read_too(tmp_path):
    files = mlx_files(4, None)
    files["chat_template.jinja"] = QWEN3_TEMPLATE.encode()
    [m] = md.scan_hf_cache(make_mlx_snapshot(tmp_path / "hub", "mlx-community/Qwen3-4B-4bit",
                                             files).parents[2])  # fmt: skip
    assert m.has_chat_template and m.thinking_switch
    [bare] = md.scan_hf_cache(make_mlx_snapshot(tmp_path / "hub2", "mlx-community/Base-1B-4bit",
                                                mlx_files(4, None)).parents[2])  # fmt: skip
    assert not bare.has_chat_template and not bare.thinking_switch and bare.problem is None


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("no_weights", "no model*.safetensors weights: the download is incomplete"),
        (
            "missing_shard",
            "model-00002-of-00002.safetensors (listed in model.safetensors.index.json) is missing",
        ),  # fmt: skip
        ("bad_config", "config.json is damaged"),
        ("cut_short", "cut short"),
        ("no_tokenizer", "no tokenizer file"),
        ("custom_code", "its own Python code"),
        ("pickle", "pytorch_model.bin: a Python pickle"),
    ],
)
def test_an_incomplete_or_refused_folder_is_listed_with_its_problem(tmp_path, fault, words):
    files = mlx_files(4, shards=2 if fault == "missing_shard" else 1)
    if fault == "no_weights":
        del files["model.safetensors"]
    elif fault == "missing_shard":
        del files["model-00002-of-00002.safetensors"]
    elif fault == "bad_config":
        files["config.json"] = b'{"model_type": "qwen2", '
    elif fault == "cut_short":
        files["model.safetensors"] = files["model.safetensors"][:-40]
    elif fault == "no_tokenizer":
        del files["tokenizer.json"]
    elif fault == "custom_code":
        files["config.json"] = json.dumps({"model_type": "x", "auto_map": {"A": "b.C"},
                                           "quantization": {"bits": 4}}).encode()  # fmt: skip
    elif fault == "pickle":
        files["pytorch_model.bin"] = b"\x80\x04pickle"
    hf = tmp_path / "hub"
    make_mlx_snapshot(hf, "mlx-community/DeepSeek-R1-Distill-Qwen-1.5B-4bit", files)
    [m] = md.scan_hf_cache(hf)
    assert m.format == "mlx" and m.problem and words in m.problem, m.problem
    assert m.name == "DeepSeek-R1-Distill-Qwen-1.5B"
    ok, text = md.verify_model(m)
    assert not ok and words in text


def test_folders_that_are_not_mlx_models_are_left_out(tmp_path, scripted_models):
    from test_model_discovery import make_hf_cache

    hf = tmp_path / "hub"
    # a PyTorch checkpoint in transformers' format (safetensors metadata "pt")
    make_mlx_snapshot(hf, "Qwen/Qwen2.5-0.5B-Instruct", mlx_files(None, fmt="pt"))
    # an embedding model, even converted by MLX
    make_mlx_snapshot(hf, "mlx-community/all-MiniLM-L6-v2-4bit",
                      mlx_files(4, config_extra={"architectures": ["BertModel"]}))  # fmt: skip
    make_mlx_snapshot(hf, "mlx-community/whisper-tiny-mlx",
                      mlx_files(None, config_extra={"is_encoder_decoder": True,
                      "architectures": ["WhisperForConditionalGeneration"]}))  # fmt: skip
    # a GGUF repo: its config.json makes no MLX model, with or without the GGUF in place
    make_hf_cache(hf, scripted_models.preopen)
    partial = hf / "models--unsloth--Other-GGUF" / "snapshots" / COMMIT
    partial.mkdir(parents=True)
    (partial / "config.json").write_text("{}")
    found = md.scan_hf_cache(hf)
    assert [(m.origin, m.format) for m in found] == [("unsloth/Tiny-R1-GGUF", "gguf")]


def test_the_same_mlx_weights_in_two_snapshots_are_listed_once(tmp_path):
    hf = tmp_path / "hub"
    files = mlx_files(4)
    old = make_mlx_snapshot(hf, "mlx-community/Qwen3-8B-4bit", files, "a" * 40)
    new = make_mlx_snapshot(hf, "mlx-community/Qwen3-8B-4bit", files, "b" * 40)
    os.utime(old, (1, 1))  # the older snapshot
    [m] = md.scan_hf_cache(hf)
    assert m.path == new
    changed = dict(files, **{"model.safetensors": tiny_safetensors(rows=9)})
    make_mlx_snapshot(hf, "mlx-community/Qwen3-8B-4bit", changed, "d" * 40)
    assert len(md.scan_hf_cache(hf)) == 2  # other weights: another model


def test_lmstudio_mlx_folders_are_found_and_deleted_only_when_asked_for_by_name(tmp_path):
    lm = tmp_path / "lmstudio" / "models"
    folder = make_mlx_folder(lm / "mlx-community" / "Qwen3-8B-4bit",
                             mlx_files(4, QWEN3_TEMPLATE, model_type="qwen3"))  # fmt: skip
    deeper = make_mlx_folder(lm / "someone" / "R1-pack" / "DeepSeek-R1-Distill-Qwen-7B-mlx-8bit",
                             mlx_files(8))  # fmt: skip
    found = {m.origin: m for m in md.scan_lmstudio(lm)}
    m = found["mlx-community/Qwen3-8B-4bit"]
    assert (m.name, m.quant, m.source, m.path) == ("Qwen3-8B", "4bit", "lmstudio", folder)
    assert m.thinking_switch and m.problem is None and m.owned_by_other_tool
    d = found["someone/R1-pack"]
    assert (d.name, d.quant, d.path) == ("DeepSeek-R1-Distill-Qwen-7B", "8bit", deeper)
    ok, text = md.verify_model(m)
    assert ok and "no checksum" in text
    assert not model_removal.deletable_from_disk(m)
    with pytest.raises(ValueError, match="not a Ponder download"):
        md.delete_model(m)
    assert md.delete_model(m, other_tool=True) >= m.size_bytes
    assert not folder.exists()
    assert deeper.is_dir()


def test_an_hf_mlx_model_is_verified_by_hash_and_deleted_whole(tmp_path):
    hf = tmp_path / "hub"
    snap = make_mlx_snapshot(hf, "mlx-community/DeepSeek-R1-Distill-Qwen-1.5B-4bit",
                             mlx_files(4, shards=2))  # fmt: skip
    [m] = md.scan_hf_cache(hf)
    ok, text = md.verify_model(m)
    assert ok and "every byte" in text
    tok = Path(os.path.realpath(snap / "tokenizer.json"))  # a small file: its git blob id
    tok.write_bytes(b'{"version": "1.1"}')  # same size, other bytes
    ok, text = md.verify_model(m)
    assert not ok and "tokenizer.json is damaged" in text
    every = sum(os.path.getsize(os.path.realpath(p)) for p in snap.iterdir())
    assert md.freeable_bytes(m) == every > m.size_bytes  # weights, config and tokenizer
    assert md.delete_model(m) == every
    assert not (hf / "models--mlx-community--DeepSeek-R1-Distill-Qwen-1.5B-4bit").exists()


def test_an_mlx_model_is_taken_off_the_list_and_discovered_with_ggufs(tmp_path, monkeypatch,
                                                                     scripted_models):  # fmt: skip
    from test_model_discovery import make_hf_cache

    monkeypatch.setenv("PONDER_CONFIG_DIR", str(tmp_path / "config"))
    hf = tmp_path / "hub"
    make_hf_cache(hf, scripted_models.preopen)
    make_mlx_snapshot(hf, "mlx-community/Qwen3-8B-4bit", mlx_files(4))
    kw = {"hf_cache": hf, "lmstudio": [], "ollama": [], "added_list": tmp_path / "none.json"}
    found = md.discover_models(**kw, last_used={})
    assert sorted(m.format for m in found) == ["gguf", "mlx"]
    mlx = next(m for m in found if m.format == "mlx")
    again = md.discover_models(**kw, last_used={mlx.key: 1e9})
    assert again[0].key == mlx.key and again[0].last_used == 1e9  # measured by its folder
    model_removal.remove_from_list(mlx)
    assert [m.format for m in md.discover_models(**kw, last_used={})] == ["gguf"]
    assert mlx.path.is_dir()


def test_describe_local_reads_an_mlx_folder_without_the_gguf_reader(tmp_path, monkeypatch):
    snap = make_mlx_snapshot(tmp_path / "hub", "mlx-community/Qwen3-8B-4bit",
                             mlx_files(4, QWEN3_TEMPLATE, ctx=40960))  # fmt: skip
    monkeypatch.setattr(model_choice, "describe_gguf", _no_gguf_reader)
    info = model_choice.describe_local(str(snap), None)
    assert (info.name, info.quant, info.format) == ("Qwen3-8B", "4bit", "mlx")
    assert info.load_settings() == {"engine": "mlx", "n_ctx": 16384}
    small_ctx = make_mlx_snapshot(tmp_path / "hub", "mlx-community/Tiny-0.5B-4bit",
                                  mlx_files(4, ctx=4096))  # fmt: skip
    assert model_choice.describe_mlx(small_ctx, None).load_settings()["n_ctx"] == 4096
    broken = make_mlx_snapshot(tmp_path / "hub", "mlx-community/Broken-1B-4bit",
                               {"config.json": b"{}"})  # fmt: skip
    with pytest.raises(ValueError, match="model_type"):
        model_choice.describe_local(str(broken), None)


def _no_gguf_reader(path: Any, _profile: Any) -> Any:
    raise AssertionError(f"the GGUF header reader was called on {path}")


# -- Auto with MLX sides, in the window ----------------------------------------------------
@pytest.fixture
def mlx_pair(tmp_path) -> tuple[md.FoundModel, md.FoundModel]:
    hf = tmp_path / "hub"
    make_mlx_snapshot(hf, "mlx-community/DeepSeek-R1-Distill-Qwen-1.5B-4bit", mlx_files(4))
    make_mlx_snapshot(hf, "mlx-community/DeepSeek-R1-Distill-Qwen-14B-4bit", mlx_files(4))
    found = scan(hf)
    return (found["mlx-community/DeepSeek-R1-Distill-Qwen-1.5B-4bit"],
            found["mlx-community/DeepSeek-R1-Distill-Qwen-14B-4bit"])  # fmt: skip


def _window(qtbot: Any, tmp_path: Path, profile: Path, models: list, client: Any = None) -> Any:
    """The real main window on a scripted client, with this hardware and these models found."""
    from app.core.chat_store import ChatStore
    from app.ui.main_window import MainWindow
    from app.ui.scripted_engine import ScriptedClient

    w = MainWindow(ChatStore(tmp_path / "chats.sqlite3"), client or ScriptedClient(), n_ctx=4096)
    qtbot.addWidget(w)
    w.choice_env = model_choice.ChoiceEnv(profile=model_choice.read_profile_file(profile))
    w.discovery = lambda: list(models)
    w.show()
    return w


def test_refresh_auto_gives_mlx_sides_the_mlx_engine_without_reading_a_gguf_header(
    qtbot, tmp_path, mlx_pair, monkeypatch
):
    from PySide6.QtCore import Qt

    from app.ui.scripted_engine import ScriptedClient

    small, big = mlx_pair
    read: list[str] = []

    def describe_gguf(path: Any, profile: Any) -> Any:
        read.append(str(path))
        return _no_gguf_reader(path, profile)

    monkeypatch.setattr(model_choice, "describe_gguf", describe_gguf)
    client = ScriptedClient()
    w = _window(qtbot, tmp_path, MAC, [small, big], client)
    w.refresh_auto()
    qtbot.waitUntil(lambda: w.composer.model_choice.isVisible(), timeout=10_000)
    pair = w.controller.router.pair
    assert (pair.small.path, pair.big.path) == (str(small.path), str(big.path))
    assert pair.small.format == pair.big.format == "mlx"
    assert pair.small.load_opts == pair.big.load_opts == {"engine": "mlx", "n_ctx": 16384}
    assert read == []

    w.composer.model_choice.setCurrentIndex(1)  # Auto
    qtbot.keyClicks(w.composer.input, "Translate 'good morning' into French.")
    qtbot.keyClick(w.composer.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not w.controller.busy, timeout=10_000)
    assert client.loads == [str(small.path)]
    assert client.model_info is not None and client.model_info["engine"] == "mlx"
    assert w.controller.load_opts["engine"] == "mlx" and w.controller.n_ctx == 16384
    note = w.chat.last_assistant().route_note.text()
    assert note.startswith("Answered by DeepSeek-R1-Distill-Qwen-1.5B (small model)")
    w.close()
    w.store.close()


def test_without_mlx_installed_auto_leaves_mlx_models_out(qtbot, tmp_path, mlx_pair):
    w = _window(qtbot, tmp_path, LAPTOP, list(mlx_pair))
    offered: list[Any] = []
    w.controller.set_auto_pair = offered.append  # type: ignore[method-assign]
    w.refresh_auto()
    qtbot.waitUntil(lambda: bool(offered), timeout=10_000)
    assert offered == [None] and not w.composer.model_choice.isVisible()
    w.close()
    w.store.close()


def test_a_gguf_small_model_and_an_mlx_big_one_each_load_with_their_engine(qtbot, tmp_path,
                                                                          mlx_pair):  # fmt: skip
    from app.core.model_discovery import read_model
    from scripted import write_scripted_gguf

    gguf = read_model(write_scripted_gguf(tmp_path / "Scripted-R1-1.5B.gguf", "answer"), "added")
    _, big = mlx_pair
    w = _window(qtbot, tmp_path, MAC, [gguf, big])
    w.refresh_auto()
    qtbot.waitUntil(lambda: w.composer.model_choice.isVisible(), timeout=10_000)
    pair = w.controller.router.pair
    assert (pair.small.format, pair.big.format) == ("gguf", "mlx")
    assert "engine" not in pair.small.load_opts and pair.small.load_opts.get("n_ctx")
    assert pair.big.load_opts == {"engine": "mlx", "n_ctx": 16384}
    w.close()
    w.store.close()


# -- the real engine: an Auto routine prompt answered by an MLX small model ------------------
def _as_hf_snapshot(cache: Path, repo: str, folder: Path) -> Path:
    return make_mlx_snapshot(cache, repo, {p.name: p.read_bytes() for p in folder.iterdir()})


def test_an_auto_routine_prompt_is_answered_by_the_mlx_small_model_through_the_engine(
    qtbot, tmp_path
):
    """A scripted MLX model (tests/scripted_mlx.py) in a fake Hub cache as the small side,
    a scripted GGUF as the big one: routine goes to MLX, complex to llama.cpp, one engine."""
    pytest.importorskip("mlx_lm")
    pytest.importorskip("llama_cpp")
    from PySide6.QtCore import Qt

    from app.core.chat_store import ChatStore
    from app.core.engine import EngineClient
    from app.core.model_discovery import read_model
    from app.ui.main_window import MainWindow
    from scripted import ANSWER5_TEXT, ANSWER_TEXT, write_scripted_gguf
    from scripted_mlx import write_scripted_mlx

    made = write_scripted_mlx(tmp_path / "made", "answer")
    snap = _as_hf_snapshot(tmp_path / "hub", "test-org/Scripted-R1-1.5B-mlx", made)
    [small] = md.scan_hf_cache(tmp_path / "hub")
    assert small.format == "mlx" and small.problem is None and small.name == "Scripted-R1-1.5B"
    big = read_model(write_scripted_gguf(tmp_path / "Scripted-R1-14B.gguf", "answer5"), "added")
    w = MainWindow(ChatStore(tmp_path / "chats.sqlite3"), EngineClient(load_timeout_s=120),
                   n_ctx=2048)  # fmt: skip
    qtbot.addWidget(w)
    w.choice_env = model_choice.ChoiceEnv(profile=model_choice.read_profile_file(MAC))
    w.discovery = lambda: [small, big]
    w.show()
    w.refresh_auto()
    qtbot.waitUntil(lambda: w.composer.model_choice.isVisible(), timeout=30_000)
    w.composer.model_choice.setCurrentIndex(1)  # Auto

    def ask(text: str) -> Any:
        qtbot.keyClicks(w.composer.input, text)
        qtbot.keyClick(w.composer.input, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: not w.controller.busy, timeout=60_000)
        return w.chat.last_assistant()

    routine = ask("Translate 'good morning' into French.")
    assert routine.answer.toPlainText().strip() == ANSWER_TEXT
    assert routine.route_note.text().startswith("Answered by Scripted-R1-1.5B (small model)")
    info = w.controller.model_info
    assert info["engine"] == "mlx" and info["path"] == os.path.realpath(snap)
    assert info["n_ctx"] == 4096  # the model's own context, under the cap

    hard = ask("Prove that the square root of 3 is irrational, step by step.")
    assert hard.answer.toPlainText().strip() == ANSWER5_TEXT
    assert w.controller.model_info["engine"] == "llama_cpp"
    w.close()
    w.store.close()
    shutil.rmtree(tmp_path / "hub", ignore_errors=True)


def test_ponder_serve_lists_an_mlx_snapshot_by_its_repo_name_with_the_mlx_engine(tmp_path):
    from app.serve.catalog import from_found

    hf = tmp_path / "hub"
    folder = make_mlx_snapshot(hf, "mlx-community/Qwen3-8B-4bit",
                               mlx_files(4, QWEN3_TEMPLATE, model_type="qwen3"))  # fmt: skip
    served = from_found(scan(hf)["mlx-community/Qwen3-8B-4bit"])
    # the snapshot folder is named by a commit: the id is the repo's name, the engine MLX
    assert (served.id, served.engine, served.path) == ("Qwen3-8B-4bit", "mlx", str(folder))


def test_the_engine_names_a_snapshots_repo_not_its_commit_when_a_shard_is_missing(tmp_path):
    from backends.base import EngineFailure
    from backends.mlx_check import check_model_folder

    files = mlx_files(4, shards=2)
    del files["model-00002-of-00002.safetensors"]
    snap = make_mlx_snapshot(tmp_path / "hub", "mlx-community/Qwen3-8B-4bit", files)
    with pytest.raises(EngineFailure) as err:
        check_model_folder(str(snap))
    assert "model-00002-of-00002.safetensors (listed in" in err.value.message
    assert "from mlx-community/Qwen3-8B-4bit: the download is incomplete" in err.value.message
    assert snap.name not in err.value.message
