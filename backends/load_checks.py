"""Checks a load makes before it allocates, and memory failures in words (issue 20).

Run inside the engine process by the llama.cpp and MLX engines:
- `check_context`: a context of zero or fewer tokens is refused in words; with `strict` (the
  person typed the number, e.g. `ponder-cli chat --ctx`) so is one above the model's
  training context, before anything is allocated;
- `memory_room`: how much more memory this process may take, and what limits it (a limit
  on its address space such as `prlimit --as`, or the free RAM);
- `kv_cache_bytes`: the KV cache a GGUF header implies at a context, to refuse a context
  that cannot fit before llama.cpp tries (no swap storm, no minute-long allocation).
Nothing here imports an engine library or the app.
"""

from __future__ import annotations

import os
from typing import Any

from backends.base import EngineFailure

KV_ELEMENT_BYTES = {"f16": 2.0, "q8_0": 1.0625, "q4_0": 0.5625}
RAM_SHARE = 0.9  # a cache above this share of the free RAM would push the machine into swap


def gb(n_bytes: float) -> str:
    """Bytes as GB (10^9) in words: '18.4 GB', '420 MB'."""
    if n_bytes < 0.1e9:
        return f"{n_bytes / 1e6:.0f} MB"
    return f"{n_bytes / 1e9:.1f} GB"


def check_context(n_ctx: Any, train_ctx: int, strict: bool, name: str) -> int | None:
    """The context asked for as an int (None: the engine's default); raise in words when it
    is not a positive number of tokens, or (strict) above what the model was trained for."""
    if n_ctx is None or n_ctx == 0:
        return None  # 0 has always meant "the default" in Ponder's protocol
    if isinstance(n_ctx, bool) or not isinstance(n_ctx, int | float) or n_ctx != int(n_ctx):
        raise EngineFailure("bad_request", f"The context must be a whole number of tokens, "
                            f"not {n_ctx!r}.")  # fmt: skip
    n_ctx = int(n_ctx)
    if n_ctx < 0:
        raise EngineFailure(
            "bad_request",
            f"The context must be a positive number of tokens, not {n_ctx:,}: try "
            f"{min(16384, train_ctx or 16384):,}.",
        )
    if strict and train_ctx and n_ctx > train_ctx:
        raise EngineFailure(
            "bad_request",
            f"{name} was trained for a context of at most {train_ctx:,} tokens; "
            f"{n_ctx:,} is more than it can use. Choose {train_ctx:,} or less.",
        )
    return n_ctx


def memory_room() -> tuple[int | None, str]:
    """(bytes this process may still take, what limits it), or (None, "") if unknown."""
    room: int | None = None
    why = ""
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY and soft > 0:
            why = f"the engine's memory limit of {gb(soft)}"
            room = max(0, soft - _address_space())
    except Exception:  # noqa: BLE001 - no figure: no check (Windows has no RLIMIT_AS)
        pass
    if why and room is None:
        return None, why
    try:
        import psutil

        free = int(psutil.virtual_memory().available)
        if room is None or free < room:
            room, why = free, "the free memory"
    except Exception:  # noqa: BLE001
        pass
    return room, why


def _address_space() -> int:
    """This process's virtual memory size (what RLIMIT_AS limits), without psutil: under a
    tight limit even importing it can fail."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import psutil

        return int(psutil.Process().memory_info().vms)


def left_words(room: int | None, why: str) -> str:
    """'about 0.2 GB is left under the engine's memory limit of 0.4 GB', or what is known."""
    if room is None:
        return f"{why} applies" if why else "the engine cannot tell how much is left"
    if why.startswith("the free"):
        return f"about {gb(room)} of memory is free"
    return f"about {gb(room)} is left under {why}"


def kv_cache_bytes(meta: Any, n_ctx: int, kv_type: str = "f16") -> int:
    """The KV cache a llama.cpp model needs at `n_ctx`, from its GGUF header (0 if unsure).

    `meta(key)` reads an architecture value (GGUFHeader.arch_value): 2 × layers × KV heads ×
    (key + value width) / 2 × bytes per element × context. Per-layer arrays count as their
    widest layer; MLA files (key_length_mla) store one latent per layer."""
    try:
        layers = int(meta("block_count") or 0)
        heads = int(meta("attention.head_count") or 0)
        kv_heads = meta("attention.head_count_kv")
        kv_heads = int(max(kv_heads) if isinstance(kv_heads, list) else kv_heads or heads)
        hidden = int(meta("embedding_length") or 0)
        key = int(meta("attention.key_length") or (hidden // heads if heads else 0))
        value = int(meta("attention.value_length") or key)
        if meta("attention.key_length_mla"):  # MLA: one latent (k) per layer, no V
            kv_heads, value = 1, 0
    except (TypeError, ValueError):
        return 0
    per_token = layers * kv_heads * (key + value) * KV_ELEMENT_BYTES.get(kv_type, 2.0)
    return int(per_token * n_ctx)


def check_room(needed: int, what: str, room: int | None, why: str, share: float = 1.0,
               parts: str = "") -> None:  # fmt: skip
    """Refuse in words, before allocating, when `needed` bytes cannot fit in `room`."""
    if room is None or needed <= 0:
        return
    limit = room * (share if why.startswith("the free") else 1.0)
    if needed > limit:
        raise EngineFailure(
            "out_of_memory",
            f"Not enough memory: {what} needs about {gb(needed)}{parts}, and "
            f"{left_words(room, why)}.",
        )


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether a native-library or allocation error means memory ran out: the error or one
    it came from says so, or an import failed while the process is at its memory limit (a
    library that cannot be mapped can surface as any ImportError, e.g. hashlib's)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, MemoryError):
            return True
        text = str(seen).lower()
        if any(
            s in text
            for s in (
                "cannot allocate memory",
                "failed to map segment",
                "out of memory",
                "unable to allocate",
                "std::bad_alloc",
            )
        ):
            return True  # fmt: skip
        seen = seen.__cause__ or seen.__context__
    return isinstance(exc, ImportError | OSError) and near_memory_limit()


def near_memory_limit(margin: int = 256 * 2**20) -> bool:
    """This process has an address-space limit (prlimit --as, ulimit -v) and is within
    `margin` bytes of it."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit == resource.RLIM_INFINITY or limit <= 0:
            return False
        with open("/proc/self/statm") as f:
            used = int(f.read().split()[0]) * resource.getpagesize()
    except (ImportError, OSError, ValueError, IndexError):
        return False
    return used > limit - margin
