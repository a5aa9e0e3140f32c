"""Plan a GGUF file already on disk (not in the catalog), from its header.

Used to check the planner against measurement (the scripted models, Gemma 3 270M) and for
files a user brings. The architecture numbers and the weights' bytes come from the header.
"""

from __future__ import annotations

from pathlib import Path

from app.core.catalog import Architecture, ModelSpec, Quant, WeightSource
from app.core.hardware.profile import HardwareProfile
from app.core.planner.budget import budget_for
from app.core.planner.plan import Plan, PlanError, _plan


def read_gguf_architecture(path: str | Path) -> tuple[Architecture, int, float, str]:
    """(architecture, tensor bytes, parameter count, name) from a GGUF header."""
    import gguf  # light, but only needed here

    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
        raise PlanError(f"{path} is not a GGUF model Ponder can read ({exc}).") from exc

    def field(key: str) -> object:
        f = reader.get_field(key)
        return None if f is None else f.contents()

    arch_name = str(field("general.architecture"))

    def num(key: str, default: int | None = None) -> int:
        v = field(f"{arch_name}.{key}")
        if v is None:
            if default is None:
                raise PlanError(f"{path} has no {arch_name}.{key} in its header.")
            return default
        return int(v)  # type: ignore[call-overload]

    hidden, heads = num("embedding_length"), num("attention.head_count")
    tokens = reader.get_field("tokenizer.ggml.tokens")
    names = {t.name for t in reader.tensors}
    arch = Architecture(
        type="dense",
        layers=num("block_count"),
        hidden=hidden,
        heads=heads,
        kv_heads=num("attention.head_count_kv", heads),
        head_dim=num("attention.key_length", hidden // heads),
        ffn=num("feed_forward_length"),
        vocab=len(tokens.data) if tokens is not None else 32000,
        max_ctx=num("context_length"),
        tied_embeddings="output.weight" not in names,
    )
    n_bytes = sum(int(t.n_bytes) for t in reader.tensors)
    params = float(sum(int(t.n_elements) for t in reader.tensors))
    return arch, n_bytes, params, str(field("general.name") or Path(path).stem)


def plan_gguf_file(profile: HardwareProfile, path: str | Path, ctx: int,
                   kv_type: str = "f16") -> Plan:  # fmt: skip
    """Plan a local GGUF file at context `ctx` (flash attention on, as Ponder loads it)."""
    arch, n_bytes, params, name = read_gguf_architecture(path)
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
    source = WeightSource("gguf", str(Path(path).parent), (quant,))
    return _plan(model, source, quant, ctx, kv_type, "llama_cpp", budget_for(profile))
