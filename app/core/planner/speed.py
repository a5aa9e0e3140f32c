"""Speed: decode tokens/s from memory bandwidth, prefill roughly, and the answer time.

Decode is memory-bound: each token reads the weights it uses once, so
tokens/s ≈ efficiency × bandwidth / bytes read per token (active parameters for MoE).
The efficiency factors are the ones seen in published measurements (FACTS.md): 65–80% on
NVIDIA, 45–60% on Apple GPUs; the CPU factor is against the probe's measured copy bandwidth
and was checked on this project's test machine (Gemma 3 270M, bench/plan_accuracy.py).
A fixed per-token cost (sampling, the engine loop) is added; it only matters for tiny models.
Prefill is compute-bound and estimated from a rough FLOP rate per device kind.
"""

from __future__ import annotations

EFFICIENCY = {"cuda": 0.70, "metal": 0.55, "cpu": 0.40}
PER_TOKEN_OVERHEAD_S = 0.0004  # sampling and the engine loop, per token (measured here)
DEFAULT_CPU_BANDWIDTH_GBS = 20.0  # when the probe could not measure it
# Effective prefill FLOP/s per GB/s of memory bandwidth (rough: tensor cores vs Apple GPUs)
PREFILL_FLOPS_PER_GBS = {"cuda": 80e9, "metal": 15e9}
CPU_PREFILL_FLOPS_PER_CORE = 25e9

TYPICAL_PROMPT_TOKENS = 300  # a question with a little context


def decode_tps(parts: list[tuple[float, float, str]]) -> float | None:
    """Tokens/s when each token reads `bytes` at `bandwidth_gbs` on device kind `kind`.

    `parts` are (bytes read per token, bandwidth GB/s, kind); the parts run one after the
    other (llama.cpp's layer split), so their times add up.
    """
    seconds = 0.0
    for n_bytes, bw, kind in parts:
        if n_bytes <= 0:
            continue
        if not bw or bw <= 0:
            return None
        seconds += n_bytes / (EFFICIENCY[kind] * bw * 1e9)
    return 1.0 / (seconds + PER_TOKEN_OVERHEAD_S) if seconds > 0 else None


def prefill_tps(active_params_b: float, kind: str, bandwidth_gbs: float | None,
                cpu_cores: int) -> float | None:  # fmt: skip
    """Rough prompt-processing tokens/s: FLOP rate / (2 × active parameters)."""
    if kind == "cpu":
        flops = CPU_PREFILL_FLOPS_PER_CORE * max(1, cpu_cores)
    elif bandwidth_gbs:
        flops = PREFILL_FLOPS_PER_GBS[kind] * bandwidth_gbs
    else:
        return None
    return flops / (2 * active_params_b * 1e9)


def answer_seconds(decode: float | None, prefill: float | None, prompt_tokens: int,
                   generated_tokens: int) -> float | None:  # fmt: skip
    """Time for a typical answer: the prompt, then the thinking and answer tokens."""
    if not decode:
        return None
    pre = prompt_tokens / prefill if prefill else 0.0
    return pre + generated_tokens / decode
