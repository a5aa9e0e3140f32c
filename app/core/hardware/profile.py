"""The `HardwareProfile` value: what the probe found, as plain frozen dataclasses.

The planner and the wizard read it; `ponder-cli doctor --json` writes it with `to_dict`
and `--hardware FILE` reads it back with `from_dict`, so the JSON keys are a contract.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class GpuInfo:
    vendor: str  # "nvidia", "amd", "intel", "other"
    name: str
    memory_total_bytes: int
    memory_free_bytes: int
    bandwidth_gbs: float | None = None
    bandwidth_source: str = "unknown"  # "table", "estimated", "unknown"
    usable_by_llama_cpp: bool = False
    index: int = 0
    driver_version: str | None = None
    cuda_version: str | None = None
    compute_capability: str | None = None
    pcie: str | None = None  # e.g. "PCIe 4.0 x16"
    nvlink: bool | None = None


@dataclass(frozen=True)
class AppleChip:
    chip: str  # "Apple M2 Max"
    unified_memory_bytes: int
    gpu_wired_limit_bytes: int  # the Metal budget, not total RAM
    gpu_cores: int | None = None
    bandwidth_gbs: float | None = None
    performance_cores: int | None = None
    efficiency_cores: int | None = None


@dataclass(frozen=True)
class CpuInfo:
    model: str
    cores_physical: int
    cores_logical: int
    flags: tuple[str, ...] = ()
    bandwidth_gbs: float | None = None  # measured copy bandwidth
    arch: str = ""


@dataclass(frozen=True)
class RamInfo:
    total_bytes: int
    available_bytes: int


@dataclass(frozen=True)
class EngineSupport:
    llama_cpp_installed: bool = False
    llama_cpp_gpu_offload: bool = False
    llama_cpp_version: str | None = None
    mlx_installed: bool = False
    mlx_version: str | None = None
    llama_cpp_backends: tuple[str, ...] = ()  # GPU ggml libraries shipped: "cuda", "metal", …


@dataclass(frozen=True)
class HardwareProfile:
    os: str  # "linux", "darwin", "windows"
    cpu: CpuInfo
    ram: RamInfo
    gpus: tuple[GpuInfo, ...] = ()
    apple: AppleChip | None = None
    disk_free_bytes: int = 0
    engines: EngineSupport = field(default_factory=EngineSupport)
    warnings: tuple[str, ...] = ()
    unreadable: tuple[str, ...] = ()  # probes that failed or timed out, in words

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cpu"]["flags"] = list(self.cpu.flags)
        d["gpus"] = [asdict(g) for g in self.gpus]
        d["engines"] = {
            "llama_cpp": {
                "installed": self.engines.llama_cpp_installed,
                "gpu_offload": self.engines.llama_cpp_gpu_offload,
                "version": self.engines.llama_cpp_version,
                "backends": list(self.engines.llama_cpp_backends),
            },
            "mlx": {"installed": self.engines.mlx_installed, "version": self.engines.mlx_version},
        }
        d["warnings"] = list(self.warnings)
        d["unreadable"] = list(self.unreadable)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HardwareProfile:
        """Rebuild a profile from `to_dict` output; raises ValueError on a malformed one."""
        try:
            cpu = dict(d["cpu"])
            cpu["flags"] = tuple(cpu.get("flags", ()))
            eng = d.get("engines") or {}
            llama = eng.get("llama_cpp") or {}
            mlx = eng.get("mlx") or {}
            return cls(
                os=str(d["os"]),
                cpu=CpuInfo(**cpu),
                ram=RamInfo(**d["ram"]),
                gpus=tuple(GpuInfo(**g) for g in d.get("gpus") or ()),
                apple=AppleChip(**d["apple"]) if d.get("apple") else None,
                disk_free_bytes=int(d.get("disk_free_bytes", 0)),
                engines=EngineSupport(
                    llama_cpp_installed=bool(llama.get("installed", False)),
                    llama_cpp_gpu_offload=bool(llama.get("gpu_offload", False)),
                    llama_cpp_version=llama.get("version"),
                    llama_cpp_backends=tuple(llama.get("backends") or ()),
                    mlx_installed=bool(mlx.get("installed", False)),
                    mlx_version=mlx.get("version"),
                ),
                warnings=tuple(d.get("warnings") or ()),
                unreadable=tuple(d.get("unreadable") or ()),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a Ponder hardware profile: {exc}") from exc
