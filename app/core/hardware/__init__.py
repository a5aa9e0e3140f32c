"""Hardware detection: what this machine can run (GPUs, Apple unified memory, CPU, RAM, disk).

`get_profile()` probes once per process (well under a second, slow facts cached per
machine in the user cache dir); `get_profile(refresh=True)` measures everything again.
"""

from app.core.hardware.probe import get_profile, llama_cpp_gpu_memory
from app.core.hardware.profile import (
    AppleChip,
    CpuInfo,
    EngineSupport,
    GpuInfo,
    HardwareProfile,
    RamInfo,
)

__all__ = [
    "AppleChip",
    "CpuInfo",
    "EngineSupport",
    "GpuInfo",
    "HardwareProfile",
    "RamInfo",
    "get_profile",
    "llama_cpp_gpu_memory",
]
