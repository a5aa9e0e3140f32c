"""Memory bandwidth of known GPUs and Apple chips, in GB/s (10^9 bytes per second).

Figures are the vendors' published peak memory bandwidth. Decode speed of a dense model
is roughly efficiency × bandwidth / bytes read per token, so this number matters more to
the planner than FLOPS. Lookups match the longest table key contained in the device name,
so "RTX 4070 Ti SUPER" wins over "RTX 4070 Ti" and "RTX 4070".
"""

from __future__ import annotations

import re

# NVIDIA: key is matched (case-insensitive, spaces normalised) inside the reported name,
# e.g. "NVIDIA GeForce RTX 4090", "NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3".
NVIDIA_GPU_BANDWIDTH_GBS: dict[str, float] = {
    # GeForce RTX 20 (Turing)
    "rtx 2060": 336.0,
    "rtx 2060 super": 448.0,
    "rtx 2070": 448.0,
    "rtx 2070 super": 448.0,
    "rtx 2080": 448.0,
    "rtx 2080 super": 496.0,
    "rtx 2080 ti": 616.0,
    "titan rtx": 672.0,
    # GeForce RTX 30 (Ampere)
    "rtx 3050": 224.0,
    "rtx 3060": 360.0,
    "rtx 3060 ti": 448.0,
    "rtx 3070": 448.0,
    "rtx 3070 ti": 608.0,
    "rtx 3080": 760.0,
    "rtx 3080 ti": 912.0,
    "rtx 3090": 936.0,
    "rtx 3090 ti": 1008.0,
    # GeForce RTX 40 (Ada)
    "rtx 4060": 272.0,
    "rtx 4060 ti": 288.0,
    "rtx 4070": 504.0,
    "rtx 4070 super": 504.0,
    "rtx 4070 ti": 504.0,
    "rtx 4070 ti super": 672.0,
    "rtx 4080": 717.0,
    "rtx 4080 super": 736.0,
    "rtx 4090": 1008.0,
    "rtx 4090 d": 1008.0,
    # GeForce RTX 50 (Blackwell)
    "rtx 5060": 448.0,
    "rtx 5060 ti": 448.0,
    "rtx 5070": 672.0,
    "rtx 5070 ti": 896.0,
    "rtx 5080": 960.0,
    "rtx 5090": 1792.0,
    # Workstation
    "rtx a4000": 448.0,
    "rtx a5000": 768.0,
    "rtx a6000": 768.0,
    "rtx 4000 ada": 360.0,
    "rtx 5000 ada": 576.0,
    "rtx 6000 ada": 960.0,
    "rtx pro 6000": 1792.0,
    # Datacenter
    "tesla t4": 320.0,
    "t4": 320.0,
    "v100": 900.0,
    "a10": 600.0,
    "a10g": 600.0,
    "a30": 933.0,
    "a40": 696.0,
    "a100-pcie-40gb": 1555.0,
    "a100-sxm4-40gb": 1555.0,
    "a100 40gb": 1555.0,
    "a100": 1935.0,  # the 80 GB parts: 1935 (PCIe) / 2039 (SXM)
    "a100-sxm4-80gb": 2039.0,
    "a100 80gb pcie": 1935.0,
    "l4": 300.0,
    "l40": 864.0,
    "l40s": 864.0,
    "h100 pcie": 2039.0,
    "h100": 3350.0,  # SXM5 HBM3
    "h100 80gb hbm3": 3350.0,
    "h100 nvl": 3938.0,
    "h800": 3350.0,
    "h20": 4000.0,
    "h200": 4800.0,
    "h200 nvl": 4800.0,
    "gh200": 4000.0,
    "b200": 8000.0,
    "gb200": 8000.0,
    "gb10": 273.0,  # DGX Spark, LPDDR5x unified memory
}

# Apple: (chip, gpu cores or None for "any") -> GB/s. Binned chips with fewer GPU cores
# can have a narrower memory bus (M3 Max 30-core: 300 GB/s; M4 Max 32-core: 410 GB/s).
APPLE_CHIP_BANDWIDTH_GBS: dict[tuple[str, int | None], float] = {
    ("m1", None): 68.25,
    ("m1 pro", None): 200.0,
    ("m1 max", None): 400.0,
    ("m1 ultra", None): 800.0,
    ("m2", None): 100.0,
    ("m2 pro", None): 200.0,
    ("m2 max", None): 400.0,
    ("m2 ultra", None): 800.0,
    ("m3", None): 100.0,
    ("m3 pro", None): 150.0,
    ("m3 max", None): 400.0,
    ("m3 max", 30): 300.0,
    ("m3 ultra", None): 819.0,
    ("m4", None): 120.0,
    ("m4 pro", None): 273.0,
    ("m4 max", None): 546.0,
    ("m4 max", 32): 410.0,
    ("m5", None): 153.0,
}


def _norm(name: str) -> str:
    text = name.lower().replace("nvidia", " ").replace("geforce", " ")
    return " " + re.sub(r"\s+", " ", text).strip() + " "


def nvidia_bandwidth_gbs(name: str) -> float | None:
    """Published bandwidth of an NVIDIA GPU by its reported name, or None if not in the table."""
    norm = _norm(name)
    best: tuple[int, float] | None = None
    for key, gbs in NVIDIA_GPU_BANDWIDTH_GBS.items():
        # whole-word match: "a10" must not match "a100", "l4" not "l40s"
        pattern = r"(?<![a-z0-9])" + re.escape(key) + r"(?![a-z0-9])"
        if re.search(pattern, norm) and (best is None or len(key) > best[0]):
            best = (len(key), gbs)
    return best[1] if best else None


def estimate_bandwidth_gbs(bus_width_bits: int, memory_clock_mhz: float, data_rate: int) -> float:
    """Peak bandwidth from bus width × memory clock × transfers per clock (e.g. 2 for DDR).

    NVML reports the memory clock in MHz; GDDR6X/GDDR7 and HBM need different data-rate
    factors, so callers mark the result as "estimated".
    """
    return bus_width_bits / 8 * memory_clock_mhz * 1e6 * data_rate / 1e9


def apple_chip_family(chip: str) -> str | None:
    """'Apple M2 Max' -> 'm2 max'; None if the name is not an Apple M-series chip."""
    m = re.search(r"\b(m\d+)(?:\s+(pro|max|ultra))?\b", chip.lower())
    if not m:
        return None
    return m.group(1) + (f" {m.group(2)}" if m.group(2) else "")


def apple_bandwidth_gbs(chip: str, gpu_cores: int | None = None) -> float | None:
    """Published unified-memory bandwidth of an Apple chip, refined by GPU core count."""
    family = apple_chip_family(chip)
    if family is None:
        return None
    if gpu_cores is not None and (family, gpu_cores) in APPLE_CHIP_BANDWIDTH_GBS:
        return APPLE_CHIP_BANDWIDTH_GBS[(family, gpu_cores)]
    return APPLE_CHIP_BANDWIDTH_GBS.get((family, None))
