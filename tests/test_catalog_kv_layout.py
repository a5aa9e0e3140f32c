"""A DeepSeek GGUF on disk is classified MLA or legacy from its tensor names, so the plan for
an imported or discovered file has the right cache and flash-attention rules. The files are
tiny ones generated with the gguf package's GGUFWriter, carrying the real tensor names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.core.hardware.profile import CpuInfo, HardwareProfile, RamInfo
from app.core.planner.local import plan_gguf_file, read_gguf_model
from app.core.planner.memory import kv_bytes_per_token, kv_layout_from_tensor_names

# R1's attention widths, a model of 2 layers with a tiny hidden size
LAYERS, HEADS, NOPE, ROPE, V, LORA = 2, 4, 128, 64, 128, 512


def write_deepseek_gguf(path: Path, layout: str) -> Path:
    import gguf

    w = gguf.GGUFWriter(str(path), "deepseek2")
    w.add_name(f"tiny-{layout}")
    a = "deepseek2"
    for key, value in (
        ("block_count", LAYERS),
        ("context_length", 4096),
        ("embedding_length", 64),
        ("feed_forward_length", 128),
        ("attention.head_count", HEADS),
        ("attention.head_count_kv", HEADS),
        ("attention.kv_lora_rank", LORA),
        ("rope.dimension_count", ROPE),
        ("expert_count", 4),
        ("expert_used_count", 2),
        ("expert_feed_forward_length", 32),
        ("leading_dense_block_count", 1),
    ):
        w.add_uint32(f"{a}.{key}", value)
    if layout == "mla":  # llama.cpp PR 12801: the cache is the latent; per-head widths *_mla
        w.add_uint32(f"{a}.attention.key_length", LORA + ROPE)
        w.add_uint32(f"{a}.attention.value_length", LORA)
        w.add_uint32(f"{a}.attention.key_length_mla", NOPE + ROPE)
        w.add_uint32(f"{a}.attention.value_length_mla", V)
    else:
        w.add_uint32(f"{a}.attention.key_length", NOPE + ROPE)
        w.add_uint32(f"{a}.attention.value_length", V)
    w.add_tensor("token_embd.weight", np.zeros((8, 64), dtype=np.float32))
    for i in range(LAYERS):
        if layout == "mla":
            w.add_tensor(f"blk.{i}.attn_k_b.weight", np.zeros((4, 8), dtype=np.float32))
            w.add_tensor(f"blk.{i}.attn_v_b.weight", np.zeros((4, 8), dtype=np.float32))
        else:
            w.add_tensor(f"blk.{i}.attn_kv_b.weight", np.zeros((4, 8), dtype=np.float32))
        w.add_tensor(f"blk.{i}.attn_kv_a_mqa.weight", np.zeros((4, 8), dtype=np.float32))
    w.add_tensor("output.weight", np.zeros((8, 64), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def cpu_box() -> HardwareProfile:
    return HardwareProfile(
        "linux", CpuInfo("x", 4, 8, (), 20.0), RamInfo(16 * 1024**3, 8 * 1024**3)
    )


def test_tensor_names_tell_the_layout():
    assert kv_layout_from_tensor_names(["blk.0.attn_k_b.weight", "blk.0.attn_v_b.weight",
                                        "blk.0.attn_kv_a_mqa.weight"]) == "mla"  # fmt: skip
    assert kv_layout_from_tensor_names(["blk.0.attn_kv_b.weight", "token_embd.weight"]) == (
        "legacy"
    )
    assert kv_layout_from_tensor_names(["blk.0.attn_k.weight", "blk.0.attn_v.weight"]) == ""


@pytest.mark.parametrize("layout", ["mla", "legacy"])
def test_a_generated_deepseek_gguf_is_read_as_what_it_is(tmp_path, layout):
    path = write_deepseek_gguf(tmp_path / f"{layout}.gguf", layout)
    arch, _, _, name, found = read_gguf_model(path)
    assert found == layout and name == f"tiny-{layout}"
    assert arch.type == "moe_mla" and arch.layers == LAYERS and arch.kv_lora_rank == LORA
    assert (arch.qk_nope_head_dim, arch.qk_rope_head_dim, arch.v_head_dim) == (NOPE, ROPE, V)
    assert (arch.experts, arch.experts_per_token, arch.dense_layers) == (4, 2, 1)


def test_the_plan_of_a_file_on_disk_follows_its_layout(tmp_path):
    mla = plan_gguf_file(cpu_box(), write_deepseek_gguf(tmp_path / "m.gguf", "mla"), ctx=2048)
    legacy = plan_gguf_file(cpu_box(), write_deepseek_gguf(tmp_path / "l.gguf", "legacy"),
                            ctx=2048)  # fmt: skip
    assert mla.flash_attn and mla.kv_cache_bytes == 2048 * LAYERS * (LORA + ROPE) * 2
    assert not legacy.flash_attn
    assert legacy.kv_cache_bytes == 2048 * LAYERS * HEADS * (NOPE + ROPE + V) * 2
    arch, *_ = read_gguf_model(tmp_path / "l.gguf")
    assert kv_bytes_per_token(arch, "f16", "legacy") * 2048 == legacy.kv_cache_bytes


def test_a_dense_file_is_not_an_mla_model(scripted_models):
    arch, _, _, _, layout = read_gguf_model(scripted_models.preopen)
    assert layout == "" and arch.type == "dense"
