"""Plan a GGUF file already on disk (not in the catalog), from its header.

Used to check the planner against measurement (the scripted models, Gemma 3 270M) and for
files a user brings. The architecture numbers and the weights' bytes come from the header; a
DeepSeek V2/V3/R1 file (`deepseek2`) is an MLA model whose KV layout the tensor names tell:
`blk.N.attn_k_b`/`attn_v_b` (MLA cache) or only `attn_kv_b` (legacy, full K and V).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from app.core.catalog import Architecture, ModelSpec, Quant, WeightSource
from app.core.hardware.profile import HardwareProfile
from app.core.planner.budget import budget_for
from app.core.planner.memory import kv_layout_from_tensor_names
from app.core.planner.plan import Plan, PlanError, _plan


def read_gguf_architecture(path: str | Path) -> tuple[Architecture, int, float, str]:
    """(architecture, tensor bytes, parameter count, name) from a GGUF header."""
    arch, n_bytes, params, name, _ = read_gguf_model(path)
    return arch, n_bytes, params, name


def read_gguf_model(path: str | Path) -> tuple[Architecture, int, float, str, str]:
    """(architecture, tensor bytes, parameter count, name, KV layout) from a GGUF header;
    the layout is "mla", "legacy" or "" (not an MLA model)."""
    from backends.gguf_check import GGUFError, check_gguf

    try:
        header = check_gguf(path)  # the header only: no tensor data, no tokenizer strings
    except (GGUFError, OSError) as exc:
        raise PlanError(f"{path} is not a GGUF model Ponder can read ({exc}).") from exc

    def field(key: str) -> object:
        return header.metadata.get(key)

    arch_name = str(field("general.architecture"))

    def num(key: str, default: int | None = None) -> int:
        v = field(f"{arch_name}.{key}")
        if v is None:
            if default is None:
                raise PlanError(f"{path} has no {arch_name}.{key} in its header.")
            return default
        if not isinstance(v, int | float):
            raise PlanError(f"{path}: {arch_name}.{key} is not a single number.")
        return int(v)

    hidden, heads = num("embedding_length"), num("attention.head_count")
    tokens = field("tokenizer.ggml.tokens")  # an array: the header check keeps its length
    names = set(header.tensor_names)
    layout = kv_layout_from_tensor_names(names)
    arch = Architecture(
        type="dense",
        layers=num("block_count"),
        hidden=hidden,
        heads=heads,
        kv_heads=num("attention.head_count_kv", heads),
        head_dim=num("attention.key_length", hidden // heads),
        ffn=num("feed_forward_length"),
        vocab=tokens if isinstance(tokens, int) and tokens > 0 else 32000,
        max_ctx=num("context_length"),
        tied_embeddings="output.weight" not in names,
    )
    if layout:
        # MLA files (after llama.cpp PR 12801) store key_length 576 / value_length 512 and
        # the per-head widths under *_mla; legacy files have the per-head widths directly.
        rope = num("rope.dimension_count")
        key = num("attention.key_length_mla", num("attention.key_length"))
        arch = replace(
            arch, type="moe_mla", head_dim=key, kv_heads=heads,
            dense_layers=num("leading_dense_block_count", 0),
            experts=num("expert_count", 0), shared_experts=num("expert_shared_count", 0),
            experts_per_token=num("expert_used_count", 0),
            expert_ffn=num("expert_feed_forward_length", 0),
            kv_lora_rank=num("attention.kv_lora_rank"),
            q_lora_rank=num("attention.q_lora_rank", 0), qk_rope_head_dim=rope,
            qk_nope_head_dim=key - rope,
            v_head_dim=num("attention.value_length_mla", num("attention.value_length")),
        )  # fmt: skip
    n_bytes = header.tensor_bytes
    params = float(header.param_count)
    return arch, n_bytes, params, str(field("general.name") or Path(path).stem), layout


def plan_gguf_file(profile: HardwareProfile, path: str | Path, ctx: int,
                   kv_type: str = "f16") -> Plan:  # fmt: skip
    """Plan a local GGUF file at context `ctx` (flash attention where its layout allows)."""
    arch, n_bytes, params, name, layout = read_gguf_model(path)
    if ctx > arch.max_ctx:
        raise PlanError(f"{name} takes at most {arch.max_ctx:,} tokens of context.")
    bits = n_bytes * 8 / params
    quant = Quant("file", bits, n_bytes, (Path(path).name,), "file")
    model = ModelSpec(
        id=Path(path).stem.lower(), name=name, family="local", base="", distill=False,
        license="", params_b=params / 1e9, active_params_b=params / 1e9, released="",
        arch=arch, sampling={}, thinking_tokens=1200, answer_tokens=300,
        recommended_ctx=min(ctx, arch.max_ctx), sources=(),
    )  # fmt: skip
    source = WeightSource("gguf", str(Path(path).parent), (quant,), layout)
    return _plan(model, source, quant, ctx, kv_type, "llama_cpp", budget_for(profile))
