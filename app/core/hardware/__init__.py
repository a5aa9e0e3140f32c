"""Hardware detection: what this machine can run (GPUs, Apple unified memory, CPU, RAM, disk)."""

from app.core.hardware.profile import (
    AppleChip,
    CpuInfo,
    EngineSupport,
    GpuInfo,
    HardwareProfile,
    RamInfo,
)

__all__ = ["AppleChip", "CpuInfo", "EngineSupport", "GpuInfo", "HardwareProfile", "RamInfo"]
