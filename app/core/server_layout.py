"""The server a model is served on, and the GPU layouts that hold it.

`ServerGpus` describes the GPUs a command is sized for: a rented server (as many 80 GB H100s
as the model needs, nodes of 8) or a real machine read from a hardware profile. `pick_layout`
finds the smallest valid layout: a tensor-parallel size that is a power of two, divides the
model's attention heads and fits in one node; across nodes, a full node per pipeline stage
(TP 8 × PP 2 = 16 GPUs, never "11 GPUs").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GB = 10**9
GPU_USABLE = 0.90  # vLLM's default --gpu-memory-utilization
MAX_NODES = 4  # rented layouts stop at 4 nodes of 8 GPUs
FP8_MIN_CC = 8.9  # FP8 compute (and FP8 MoE in vLLM): Ada (8.9), Hopper (9.0) and newer


def gpu_words(n: int) -> str:
    """'1 GPU', '8 GPUs'."""
    return f"{n} GPU" if n == 1 else f"{n} GPUs"


@dataclass(frozen=True)
class ServerGpus:
    """The GPUs a command is sized for. `count` 0 means a rented server: as many as needed."""

    name: str = "H100"
    memory_gb: float = 80.0
    compute_capability: float = 9.0
    count: int = 0
    per_node: int = 8
    ram_gb: float = 0.0  # host RAM (0: a rented server with RAM to match the model)

    @property
    def rented(self) -> bool:
        return self.count <= 0

    @property
    def fp8(self) -> bool:
        """Whether the GPUs compute in FP8 (vLLM's FP8 MoE and SGLang's FP8 need this)."""
        return self.compute_capability >= FP8_MIN_CC

    def words(self, gpus: int) -> str:
        """'8 × H100 80 GB' for a layout of `gpus` GPUs."""
        return f"{gpus} × {self.name}"


DEFAULT_SERVER = ServerGpus()


def server_from_profile(profile: Any) -> ServerGpus | None:
    """The NVIDIA GPUs of a hardware profile as a server (None when it has none)."""
    gpus = [g for g in getattr(profile, "gpus", ()) or () if g.vendor == "nvidia"]
    if not gpus:
        return None
    first = gpus[0]
    try:
        cc = float(first.compute_capability or 0.0)
    except ValueError:
        cc = 0.0
    memory_gb = min(g.memory_total_bytes for g in gpus) / GB
    name = first.name.removeprefix("NVIDIA ").strip() or "GPU"
    ram = getattr(getattr(profile, "ram", None), "total_bytes", 0) / GB
    return ServerGpus(name, memory_gb, cc, len(gpus), min(8, len(gpus)), ram)


@dataclass(frozen=True)
class Layout:
    """Tensor parallel × pipeline parallel; `fits` says whether it holds the model."""

    tp: int
    pp: int = 1
    fits: bool = True

    @property
    def gpus(self) -> int:
        return self.tp * self.pp

    def words(self) -> str:
        """'1 GPU', '4 GPUs (tensor parallel)', '2 nodes × 8 GPUs (16 in all)'."""
        if self.pp > 1:
            return f"{self.pp} nodes × {gpu_words(self.tp)} ({self.gpus} in all)"
        return gpu_words(self.tp) + (" (tensor parallel)" if self.tp > 1 else "")


def valid_tp_sizes(heads: int, kv_heads: int, per_node: int) -> list[int]:
    """Powers of two ≤ the GPUs per node that divide the attention heads (and map onto the
    KV heads: vLLM splits them or replicates them evenly)."""
    sizes = []
    tp = 1
    while tp <= per_node:
        if heads % tp == 0 and (kv_heads % tp == 0 or tp % kv_heads == 0):
            sizes.append(tp)
        tp *= 2
    return sizes


def pick_layout(need_bytes: float, per_gpu_bytes: float, heads: int, kv_heads: int,
                server: ServerGpus, multi_node: bool = True) -> Layout:  # fmt: skip
    """The smallest valid layout whose GPUs hold `need_bytes` plus `per_gpu_bytes` on each
    (activations, CUDA graphs). On a real server, never more GPUs than it has."""
    usable = server.memory_gb * GB * GPU_USABLE - per_gpu_bytes
    sizes = valid_tp_sizes(heads, kv_heads, server.per_node)
    limit = server.count if not server.rented else server.per_node * MAX_NODES
    for tp in sizes:
        if tp <= limit and tp * usable >= need_bytes:
            return Layout(tp)
    top = max(t for t in sizes if t <= max(1, limit))
    if multi_node and top == server.per_node:
        for pp in range(2, MAX_NODES + 1):
            if top * pp > limit:
                break
            if top * pp * usable >= need_bytes:
                return Layout(top, pp)
    pp = max(1, min(MAX_NODES, limit // top)) if multi_node and top == server.per_node else 1
    return Layout(top, pp, fits=False)
