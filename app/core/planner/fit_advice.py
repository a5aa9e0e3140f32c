"""Smaller options, in words, for a model that ran out of memory (issue 20).

When a load fails for memory, the person should read what would fit instead of a bare
"out of memory": `smaller_options` reads the GGUF header and says, with the planner's own
memory formulas (app/core/planner/memory.py, host RAM), what the model needs at smaller
contexts, e.g. "A 16K context needs about 1.2 GB in all, 8K about 0.9 GB (the model itself
0.3 GB)", and which of them fits in `limit_bytes` when the engine's memory limit is known.
No Qt, no engine imports.
"""

from __future__ import annotations

from pathlib import Path

from app.core.planner import memory as mem
from app.core.planner.words import ctx_words, gb_words

CONTEXTS = (4096, 8192, 16384, 32768, 65536, 131072)


def ram_needed(path: str | Path, ctx: int, kv_type: str = "f16") -> tuple[int, int]:
    """(bytes in all, bytes of the weights) the model at `path` needs in RAM at `ctx`."""
    from app.core.planner.local import read_gguf_model

    arch, n_bytes, _params, _name, layout = read_gguf_model(path)
    kv_type = kv_type if kv_type in mem.KV_BYTES_PER_ELEMENT else "f16"
    kv = mem.kv_cache_bytes(arch, ctx, kv_type, layout=layout or "mla")
    total = n_bytes + kv + mem.compute_bytes_ram(arch, ctx) + mem.cpu_overhead_bytes(arch)
    return int(total), int(n_bytes)


def smaller_options(path: str | Path, n_ctx: int, kv_type: str = "f16",
                    limit_bytes: int | None = None) -> str:  # fmt: skip
    """One or two sentences naming smaller contexts and what they need; "" if the header
    cannot be read (a remote model, an MLX folder, a damaged file)."""
    from app.core.planner.local import read_gguf_model
    from app.core.planner.plan import PlanError

    try:
        arch = read_gguf_model(path)[0]
        sizes = [c for c in CONTEXTS if c < n_ctx and c <= arch.max_ctx]
        needs = [(c, *ram_needed(path, c, kv_type)) for c in sizes[-3:]]
        weights = ram_needed(path, min(n_ctx, 512) or 512, kv_type)[1]
    except (PlanError, OSError, ValueError, KeyError):
        return ""
    if not needs:
        return (
            f"The model itself takes about {gb_words(weights)}: choose a smaller quant or "
            "model, or close other programs."
        )
    needs.reverse()  # the largest first
    first, *rest = needs
    said = f"A {ctx_words(first[0])} context needs about {gb_words(first[1])} in all"
    said += "".join(f", {ctx_words(c)} about {gb_words(total)}" for c, total, _ in rest)
    said += f" (the model itself {gb_words(weights)})."
    if limit_bytes:
        fits = [c for c, total, _ in needs if total <= limit_bytes]
        if fits:
            room = gb_words(limit_bytes)
            said += f" A {ctx_words(fits[0])} context fits in the {room} available."
        else:
            said += f" None of these fits in {gb_words(limit_bytes)}: choose a smaller model."
            return said
    return said + " Choose a smaller context, or a smaller quant or model."


def with_smaller_options(message: str, path: str | Path, n_ctx: int | None,
                         kv_type: str | None = None) -> str:  # fmt: skip
    """An out-of-memory message followed by the smaller options (the window and the CLI)."""
    try:
        advice = smaller_options(path, int(n_ctx or 16384), kv_type or "f16")
    except Exception:  # noqa: BLE001 - advice is a courtesy: never hide the error itself
        advice = ""
    return f"{message} {advice}".strip()
