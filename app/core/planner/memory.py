"""Memory a model needs: weights, KV cache, compute buffers and runtime overhead.

The formulas follow llama.cpp (what it allocates) and the tools that estimate it best
(Ollama's graph sizes, gguf-parser's overheads); see FACTS.md. On a GPU the compute buffer is
allocated whole, so it counts whole; in host RAM llama.cpp's buffers are committed only where
written, and with one output row per step the logits part of the graph is never written, so
the RAM figure counts the buffers a generation touches. This is what the engine process's
resident memory shows (tests/test_planner_accuracy.py measures it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from app.core.catalog import Architecture

MIB = 1024**2
GIB = 1024**3
UBATCH = 512  # llama.cpp's physical batch: n_batch = min(512, n_ctx) in the engine

# Bytes per KV element (q8_0 and q4_0 carry a scale per 32 values; they need flash attention).
KV_BYTES_PER_ELEMENT = {"f16": 2.0, "q8_0": 1.0625, "q4_0": 0.5625}

# Fixed runtime overhead per device (FACTS.md): Ollama reserves 457 MiB per CUDA GPU and 512
# MiB on Metal. In host RAM: the engine's own structures (llama.cpp context, thread pools,
# token tables that grow with the vocabulary), measured here against the engine process.
CUDA_OVERHEAD = 457 * MIB
METAL_OVERHEAD = 512 * MIB
CPU_OVERHEAD = 7 * MIB
CPU_OVERHEAD_PER_VOCAB_TOKEN = 242  # bytes: llama.cpp's vocabulary tables and caches
HOST_OVERHEAD_WITH_GPU = 300 * MIB  # pinned staging buffers and the driver's host side


def kv_bytes_per_token(arch: Architecture, kv_type: str = "f16", layout: str = "mla") -> float:
    """KV cache bytes per token of context, all layers.

    Dense (GQA): 2 (K and V) × layers × KV heads × head_dim × bytes per element.
    MLA models (DeepSeek V3/R1) depend on the file's `layout`:
    - "mla" (GGUFs with attn_k_b/attn_v_b, llama.cpp since early 2026): one latent of
      kv_lora_rank + rope dims per layer, 576 elements at R1's sizes → 68.6 KiB a token at f16;
    - "legacy" (the first R1 GGUFs, only attn_kv_b): full keys (nope + rope dims) and values
      for every head, 61 × 128 × (192 + 128) × 2 bytes = 4.77 MiB a token at f16. Without
      flash attention only K can be quantized; V stays f16 (ggml-org/llama.cpp PR 12801).
    """
    bpe = KV_BYTES_PER_ELEMENT[kv_type]
    if arch.type == "moe_mla":
        if layout == "legacy":
            k = (arch.qk_nope_head_dim + arch.qk_rope_head_dim) * bpe
            v = arch.v_head_dim * KV_BYTES_PER_ELEMENT["f16"]
            return arch.layers * arch.heads * (k + v)
        return arch.layers * (arch.kv_lora_rank + arch.qk_rope_head_dim) * bpe
    return 2 * arch.layers * arch.kv_heads * arch.head_dim * bpe


def kv_cache_bytes(arch: Architecture, ctx: int, kv_type: str = "f16", slots: int = 1,
                   layout: str = "mla") -> int:  # fmt: skip
    return int(ctx * slots * kv_bytes_per_token(arch, kv_type, layout))


def flash_attention_possible(arch: Architecture, layout: str) -> bool:
    """llama.cpp cannot use flash attention on a legacy (non-MLA) DeepSeek file: its K and V
    heads differ in width (192 vs 128). Without it the V cache cannot be quantized either."""
    return not (arch.type == "moe_mla" and layout == "legacy")


def kv_layout_from_tensor_names(names: Iterable[str]) -> str:
    """The KV layout from a GGUF's tensor names: "mla" when blk.N.attn_k_b / attn_v_b are there,
    "legacy" when a DeepSeek file has only blk.N.attn_kv_b, "" for other models."""
    found = {n.split(".")[2] for n in names if n.startswith("blk.") and n.count(".") >= 2}
    if {"attn_k_b", "attn_v_b"} & found:
        return "mla"
    if "attn_kv_b" in found:
        return "legacy"
    return ""


def _ffn_width(arch: Architecture) -> int:
    if arch.is_moe:
        return max(arch.ffn, arch.expert_ffn * (arch.experts_per_token + arch.shared_experts))
    return arch.ffn


def compute_bytes_gpu(arch: Architecture, ctx: int, flash_attn: bool = True) -> int:
    """The compute buffer llama.cpp reserves on an accelerator (all of it is allocated).

    b = min(ctx, 512): the logits buffer 4·b·(hidden + vocab) against the layer graph
    4·b·(2·hidden + ffn); without flash attention the attention scores add heads·ctx·b·4
    (FACTS.md "Compute buffer": llama.cpp's KQ tensor, as in Ollama's graph formula for
    qwen2, 4b(1 + 2E + ctx + ctx·H)). For R1 without flash attention (the legacy files) that
    is 128 heads × ctx × 512 × 4 bytes: 4.3 GB at 16K, 8.6 GB at 32K, on every GPU.
    """
    b = min(ctx, UBATCH)
    logits = 4 * b * (arch.hidden + arch.vocab)
    graph = 4 * b * (1 + 2 * arch.hidden + _ffn_width(arch))
    if not flash_attn:
        graph += 4 * arch.heads * ctx * b
    return int(max(logits, graph))


def compute_bytes_ram(arch: Architecture, ctx: int, flash_attn: bool = True) -> int:
    """The part of the CPU compute buffer a chat actually writes (resident memory).

    Activations of a full micro-batch (3 hidden-wide and 2 ffn-wide f32 rows per token), one
    row of logits, the attention mask over the whole context (f16 with flash attention), and
    without flash attention the scores over the whole context.
    """
    b = min(ctx, UBATCH)
    used = 4 * b * (3 * arch.hidden + 2 * _ffn_width(arch)) + 4 * arch.vocab
    used += (2 if flash_attn else 4) * ctx * b
    if not flash_attn:
        used += 4 * arch.heads * ctx * b
    return int(used)


def cpu_overhead_bytes(arch: Architecture) -> int:
    return CPU_OVERHEAD + CPU_OVERHEAD_PER_VOCAB_TOKEN * arch.vocab


@dataclass(frozen=True)
class WeightSplit:
    """How the weights divide: the token embedding (stays in host RAM in llama.cpp), the
    repeating layers, the output layer; for MoE, expert tensors vs everything else."""

    total: int
    embedding: int
    per_layer: float
    output: int
    expert: int  # routed expert tensors (MoE), 0 for dense models
    active_per_token: int  # bytes read to make one token


def split_weights(arch: Architecture, weights: int, bits: float, params_b: float,
                  active_params_b: float) -> WeightSplit:  # fmt: skip
    """Divide a file's bytes between embedding, layers and output (from the architecture)."""
    row_bytes = arch.vocab * arch.hidden * bits / 8
    embedding = int(min(row_bytes, weights * 0.5))
    output = 0 if arch.tied_embeddings else int(min(row_bytes, weights * 0.25))
    per_layer = max(0.0, (weights - embedding - output) / arch.layers)
    expert = 0
    if arch.is_moe and arch.experts:
        moe_layers = arch.layers - arch.dense_layers
        routed = moe_layers * arch.experts * 3 * arch.hidden * arch.expert_ffn
        other = max(0.0, params_b * 1e9 - routed) * max(bits, 4.5) / 8
        expert = int(max(0.0, weights - other))
        active = int(weights - expert + expert * arch.experts_per_token / arch.experts)
    else:
        # the embedding is looked up (one row), unless it doubles as the output layer
        active = weights - (0 if arch.tied_embeddings else embedding)
    del active_params_b  # the architecture gives the same figure more precisely
    return WeightSplit(weights, embedding, per_layer, output, expert, int(active))
