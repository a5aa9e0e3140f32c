"""Apple Silicon: chip, unified memory, core counts, GPU cores, and the Metal memory budget.

The GPU may wire only part of unified memory by default (Metal's
`recommendedMaxWorkingSetSize`): about two thirds on machines below 36 GB and three
quarters above, or exactly `iogpu.wired_limit_mb` when the user has raised it. That
budget, not total RAM, is what a model on the GPU can use.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field

from app.core.hardware._run import run_command
from app.core.hardware.bandwidth_tables import apple_bandwidth_gbs
from app.core.hardware.profile import AppleChip

GIB = 1024**3
SYSCTL_KEYS = (
    "machdep.cpu.brand_string",
    "hw.memsize",
    "hw.physicalcpu",
    "hw.logicalcpu",
    "hw.perflevel0.physicalcpu",
    "hw.perflevel1.physicalcpu",
    "iogpu.wired_limit_mb",
)
# sysctl name -> the flag name llama.cpp's build/ggml uses
SYSCTL_FLAGS = {
    "hw.optional.neon": "neon",
    "hw.optional.arm.AdvSIMD": "neon",
    "hw.optional.arm.FEAT_DotProd": "dotprod",
    "hw.optional.arm.FEAT_I8MM": "i8mm",
    "hw.optional.arm.FEAT_BF16": "bf16",
    "hw.optional.arm.FEAT_FP16": "fp16",
    "hw.optional.arm.FEAT_SME": "sme",
    "hw.optional.arm.FEAT_SME2": "sme2",
    "hw.optional.avx2_0": "avx2",  # Intel Macs
    "hw.optional.avx512f": "avx512f",
    "hw.optional.fma": "fma",
}


@dataclass
class AppleResult:
    chip: AppleChip | None = None
    sysctl: dict[str, str] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)


def parse_sysctl(text: str) -> dict[str, str]:
    """`sysctl a b c` output ("name: value" lines) as a dict; unknown names are skipped."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() and " " not in name.strip():
            out[name.strip()] = value.strip()
    return out


def sysctl_flags(values: dict[str, str]) -> tuple[str, ...]:
    """SIMD features that matter to llama.cpp from sysctl's hw.optional.* entries."""
    flags = {flag for key, flag in SYSCTL_FLAGS.items() if values.get(key, "0").strip() == "1"}
    return tuple(sorted(flags))


def parse_gpu_cores(system_profiler_json: str) -> tuple[str | None, int | None]:
    """(GPU model, core count) from `system_profiler SPDisplaysDataType -json`."""
    try:
        rows = json.loads(system_profiler_json).get("SPDisplaysDataType") or []
    except (ValueError, AttributeError):
        return None, None
    for row in rows:
        if not isinstance(row, dict):
            continue
        model = row.get("sppci_model") or row.get("_name")
        cores = re.search(r"\d+", str(row.get("sppci_cores") or ""))
        if model and str(model).startswith("Apple") or cores:
            return (str(model) if model else None), (int(cores.group(0)) if cores else None)
    return None, None


def default_wired_limit_bytes(unified_memory_bytes: int, wired_limit_mb: int = 0) -> int:
    """The Metal budget: `iogpu.wired_limit_mb` when set, else ~2/3 below 36 GB, ~3/4 above."""
    if wired_limit_mb > 0:
        return wired_limit_mb * 1024 * 1024
    share = 0.75 if unified_memory_bytes >= 36 * GIB else 2 / 3
    return int(unified_memory_bytes * share)


def chip_from(values: dict[str, str], gpu_model: str | None, gpu_cores: int | None) -> AppleChip:
    """Build the AppleChip from parsed sysctl values and system_profiler's GPU facts."""
    brand = values.get("machdep.cpu.brand_string", "").strip()
    if not brand.startswith("Apple M") and gpu_model and gpu_model.startswith("Apple M"):
        brand = gpu_model  # first M1 macOS builds said "Apple processor"
    memory = int(values.get("hw.memsize", "0") or 0)
    wired_mb = int(values.get("iogpu.wired_limit_mb", "0") or 0)
    p = values.get("hw.perflevel0.physicalcpu")
    e = values.get("hw.perflevel1.physicalcpu")
    return AppleChip(
        chip=brand or "Apple Silicon",
        unified_memory_bytes=memory,
        gpu_wired_limit_bytes=default_wired_limit_bytes(memory, wired_mb),
        gpu_cores=gpu_cores,
        bandwidth_gbs=apple_bandwidth_gbs(brand or (gpu_model or ""), gpu_cores),
        performance_cores=int(p) if p and p.isdigit() else None,
        efficiency_cores=int(e) if e and e.isdigit() else None,
    )


def is_apple_silicon() -> bool:
    import platform

    return sys.platform == "darwin" and platform.machine() == "arm64"


def probe_apple(timeout: float = 1.0, gpu_cores_cached: int | None = None,
                profiler_timeout: float = 3.0) -> AppleResult:  # fmt: skip
    """Read sysctl (fast) and, unless the GPU core count is cached, system_profiler (slow)."""
    result = AppleResult()
    res = run_command(["sysctl", *SYSCTL_KEYS, "hw.optional"], timeout)
    # sysctl exits non-zero when one name is unknown (iogpu.* on older macOS) but prints the rest
    values = parse_sysctl(res.stdout)
    if not values:
        result.unreadable.append(f"Apple chip: {res.error or 'sysctl printed nothing'}")
        return result
    result.sysctl = values
    model, cores = None, gpu_cores_cached
    if cores is None:
        sp = run_command(["system_profiler", "SPDisplaysDataType", "-json"], profiler_timeout)
        if sp.ok:
            model, cores = parse_gpu_cores(sp.stdout)
        else:
            result.unreadable.append(f"Apple GPU core count: {sp.error}")
    result.chip = chip_from(values, model, cores)
    return result
