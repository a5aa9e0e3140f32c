"""What a machine offers the planner: accelerator memory, usable RAM, bandwidths.

Built from a `HardwareProfile`. NVIDIA GPUs count when llama.cpp was built with GPU offload
(or the profile is of another machine and says the GPU is usable); their budget is the FREE
memory the probe read (a desktop's display and other programs hold the rest), with the total
kept beside it for the words. On Apple Silicon the accelerator budget is Metal's wired limit,
not the whole unified memory. Host RAM keeps a
reserve for the system and the app: 20% of RAM, at least 2 GiB and at most 16 GiB.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from app.core.hardware.profile import HardwareProfile
from app.core.planner.speed import DEFAULT_CPU_BANDWIDTH_GBS
from app.core.planner.words import gb_words

GIB = 1024**3


@dataclass(frozen=True)
class Budget:
    accel: str  # "cuda", "metal" or "none"
    gpu_bytes: tuple[int, ...]  # memory a model may use on each device: free, not total
    gpu_bandwidth_gbs: float | None  # the slowest device's (layers run one after the other)
    ram_bytes: int  # host RAM a model may fill
    ram_total_bytes: int
    cpu_bandwidth_gbs: float
    cpu_cores: int
    unified: bool  # Apple Silicon: the GPU part is also taken from RAM
    mlx: bool  # MLX usable (Apple Silicon with mlx installed)
    gpu_names: tuple[str, ...] = ()
    speed_scale: float = 1.0  # measured/predicted speed on this machine (model_stats)
    gpu_installed_bytes: tuple[int, ...] = ()  # each device's total memory (for the words)

    @property
    def gpu_total_bytes(self) -> int:
        """What the plan may fill on the accelerators (the free memory)."""
        return sum(self.gpu_bytes)

    @property
    def gpu_installed_total_bytes(self) -> int:
        return sum(self.gpu_installed_bytes) or self.gpu_total_bytes

    def describe_gpu_memory(self) -> str:
        """The budget in words: "7.5 GB free of 8 GB" (CUDA), "10.9 GB Metal may use of 16 GB"."""
        free, total = self.gpu_total_bytes, self.gpu_installed_total_bytes
        if self.accel == "metal":
            return f"{gb_words(free)} Metal may use of {gb_words(total)}"
        if total > free:
            return f"{gb_words(free)} free of {gb_words(total)}"
        return gb_words(free)

    def describe_gpu(self) -> str:
        if self.accel == "metal":
            return "the GPU's share of unified memory"
        if len(self.gpu_names) > 1:
            return f"the {len(self.gpu_names)} GPUs"
        return "the GPU"


def free_gpu_bytes(total: int, free: int) -> int:
    """The free memory when the probe read it (0 < free ≤ total), else the total."""
    return free if 0 < free <= total else total


def ram_reserve_bytes(total: int) -> int:
    return int(min(max(2 * GIB, 0.2 * total), 16 * GIB))


def budget_for(profile: HardwareProfile, speed_scale: float = 1.0) -> Budget:
    """The planner's view of a machine; `speed_scale` calibrates the predicted speeds with
    what was measured here (clamped to 0.25–4: one odd measurement must not rule)."""
    return replace(_budget(profile), speed_scale=min(4.0, max(0.25, speed_scale)))


def _budget(profile: HardwareProfile) -> Budget:
    total = profile.ram.total_bytes
    apple = profile.apple
    cpu_bw = profile.cpu.bandwidth_gbs or DEFAULT_CPU_BANDWIDTH_GBS
    cores = profile.cpu.cores_physical or profile.cpu.cores_logical or 1
    ram = max(0, total - ram_reserve_bytes(total))
    if apple is not None:
        total = apple.unified_memory_bytes or total
        ram = max(0, total - ram_reserve_bytes(total))
        return Budget(
            accel="metal",
            gpu_bytes=(min(apple.gpu_wired_limit_bytes, ram),),
            gpu_bandwidth_gbs=apple.bandwidth_gbs,
            ram_bytes=ram,
            ram_total_bytes=total,
            cpu_bandwidth_gbs=profile.cpu.bandwidth_gbs or (apple.bandwidth_gbs or 100) * 0.4,
            cpu_cores=cores,
            unified=True,
            mlx=profile.engines.mlx_installed,
            gpu_names=(apple.chip,),
            gpu_installed_bytes=(total,),
        )
    gpus = [
        g
        for g in profile.gpus
        if g.vendor == "nvidia" and profile.engines.llama_cpp_gpu_offload and g.memory_total_bytes
    ]
    if gpus:
        bws = [g.bandwidth_gbs for g in gpus if g.bandwidth_gbs]
        return Budget(
            accel="cuda",
            gpu_bytes=tuple(
                free_gpu_bytes(g.memory_total_bytes, g.memory_free_bytes) for g in gpus
            ),  # fmt: skip
            gpu_bandwidth_gbs=min(bws) if bws else None,
            ram_bytes=ram,
            ram_total_bytes=total,
            cpu_bandwidth_gbs=cpu_bw,
            cpu_cores=cores,
            unified=False,
            mlx=False,
            gpu_names=tuple(g.name for g in gpus),
            gpu_installed_bytes=tuple(g.memory_total_bytes for g in gpus),
        )
    return Budget("none", (), None, ram, total, cpu_bw, cores, False, False)
