"""Speed: decode tokens/s from where the weights sit, prefill roughly, and the answer time.

Decode reads the weights a token uses once, so bandwidth sets most of the time — but not
all of it. One token's time is modelled as a sum of explicit costs, each fitted to published
llama.cpp measurements (tests/data/speed_measurements.csv; `bench/speed_accuracy.py` prints
predicted ÷ measured per row):

- reading the weights: bytes / (efficiency × peak bandwidth) per device kind;
- a cost per layer on an accelerator (kernel launches and synchronisation: it is why an 8B
  model on an H100 runs at 144 tokens/s, not the 400 the bandwidth alone allows);
- a cost per MoE layer (routing, gathering eight experts, small matrix products: why the
  full R1 on two A100s decodes at 9 tokens/s where the bandwidth allows 100; fitted on
  January 2025 GGUFs, the only public CUDA figures; the CPU value is Metal's, unmeasured);
- a hand-off per extra GPU in a layer split (small: 8 RTX 4090s run an 8B model at
  116 tokens/s, one at 128);
- on the CPU, the arithmetic of the cores: dequantising and multiplying the weights costs
  about as much as reading them on a laptop, so the time is bytes / bandwidth plus bytes /
  (rate per core × cores);
- a fixed cost per token (sampling, the engine loop), which only matters for tiny models.

The CPU bandwidth is the peak of the memory (channels × transfers/s × 8 bytes); a probed
machine reports its measured copy bandwidth instead, which is lower, so predictions there
err on the slow side. Prefill is compute-bound and estimated from a rough FLOP rate.
"""

from __future__ import annotations

from dataclasses import dataclass

# Fitted on the `fit` rows of tests/data/speed_measurements.csv (see bench/speed_accuracy.py).
EFFICIENCY = {"cuda": 0.90, "metal": 0.64, "cpu": 0.78}  # of the peak bandwidth
LAYER_S = {"cuda": 115e-6, "metal": 115e-6, "cpu": 0.0}  # per layer on the device, per token
MOE_LAYER_S = {"cuda": 1.6e-3, "metal": 0.11e-3, "cpu": 0.11e-3}  # per MoE layer, per token
GPU_HOP_S = 0.1e-3  # per extra GPU in a layer split (the fit drives it to ~0)
CPU_CORE_GBS = 32.0  # weights a core dequantises and multiplies per second (GB/s)
PER_TOKEN_OVERHEAD_S = 0.0004  # sampling and the engine loop, per token (measured here)
DEFAULT_CPU_BANDWIDTH_GBS = 20.0  # when the probe could not measure it
# Effective prefill FLOP/s per GB/s of memory bandwidth (rough: tensor cores vs Apple GPUs)
PREFILL_FLOPS_PER_GBS = {"cuda": 80e9, "metal": 15e9}
CPU_PREFILL_FLOPS_PER_CORE = 25e9

TYPICAL_PROMPT_TOKENS = 300  # a question with a little context


@dataclass(frozen=True)
class Route:
    """Where one token's work happens: bytes read on the accelerator and from host RAM,
    the layers on each side, and how many of them are MoE layers."""

    kind: str  # the accelerator: "cuda" or "metal"; "cpu" when there is none
    gpu_bytes: float = 0.0
    cpu_bytes: float = 0.0
    gpu_bandwidth_gbs: float | None = None
    cpu_bandwidth_gbs: float | None = None
    cpu_cores: int = 1
    gpus: int = 1
    gpu_layers: int = 0
    gpu_moe_layers: int = 0
    cpu_moe_layers: int = 0


def token_seconds(route: Route) -> float | None:
    """Seconds per decoded token on `route`; None when a bandwidth it needs is unknown."""
    seconds = PER_TOKEN_OVERHEAD_S
    if route.gpu_bytes > 0:
        bw = route.gpu_bandwidth_gbs
        if not bw or bw <= 0 or route.kind == "cpu":
            return None
        seconds += route.gpu_bytes / (EFFICIENCY[route.kind] * bw * 1e9)
        seconds += LAYER_S[route.kind] * route.gpu_layers
        seconds += MOE_LAYER_S[route.kind] * route.gpu_moe_layers
        seconds += GPU_HOP_S * max(0, route.gpus - 1)
    if route.cpu_bytes > 0:
        bw = route.cpu_bandwidth_gbs
        if not bw or bw <= 0:
            return None
        seconds += route.cpu_bytes / (EFFICIENCY["cpu"] * bw * 1e9)
        seconds += route.cpu_bytes / (CPU_CORE_GBS * max(1, route.cpu_cores) * 1e9)
        seconds += MOE_LAYER_S["cpu"] * route.cpu_moe_layers
    return seconds


def decode_tps(route: Route) -> float | None:
    """Decoded tokens per second on `route` (None when it cannot be estimated)."""
    seconds = token_seconds(route)
    return 1.0 / seconds if seconds else None


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
    """Time for an answer: the prompt, then the thinking and answer tokens."""
    if not decode:
        return None
    pre = prompt_tokens / prefill if prefill else 0.0
    return pre + generated_tokens / decode
