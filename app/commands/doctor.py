"""`ponder-cli doctor`: what this machine has and which engines can use it.

Prints a readable report; `--json` prints the HardwareProfile dict (the same JSON that
`--hardware FILE` options read back); `--refresh` measures everything again instead of
using the per-machine cache (CPU bandwidth, engine build, Apple GPU cores).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

GB = 10**9


def add_parser(sub: Any) -> None:
    p = sub.add_parser("doctor", help="show the hardware and what can run on it")
    p.add_argument("--json", action="store_true", help="print the hardware profile as JSON")
    p.add_argument("--refresh", action="store_true",
                   help="measure again instead of using cached facts")  # fmt: skip
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from app.core.hardware import get_profile

    profile = get_profile(refresh=bool(args.refresh))
    if args.json:
        print(json.dumps(profile.to_dict(), indent=2))
    else:
        sys.stdout.write(format_report(profile))
    return 0


def _gib(n: int) -> str:
    """Bytes in GB (10^9), the one unit Ponder uses for sizes everywhere (GUI and CLI)."""
    return f"{n / GB:.1f} GB"


def format_report(profile: Any) -> str:
    """The profile as a short human report (plain text, one fact per line)."""
    from app.core.hardware import llama_cpp_gpu_memory

    lines: list[str] = []
    c, r = profile.cpu, profile.ram
    lines.append(f"System   {profile.os} ({c.arch or 'unknown arch'})")
    cores = f"{c.cores_physical} cores / {c.cores_logical} threads"
    lines.append(f"CPU      {c.model or 'unknown'}, {cores}")
    lines.append(f"         SIMD: {', '.join(c.flags) if c.flags else 'none detected'}")
    if c.bandwidth_gbs:
        lines.append(f"         memory copy bandwidth: {c.bandwidth_gbs:.0f} GB/s (measured)")
    lines.append(f"RAM      {_gib(r.total_bytes)} total, {_gib(r.available_bytes)} available")
    if profile.apple:
        a = profile.apple
        gpu = f"{a.gpu_cores}-core GPU" if a.gpu_cores else "GPU cores unknown"
        cpu_split = ""
        if a.performance_cores is not None:
            cpu_split = f", {a.performance_cores}P+{a.efficiency_cores or 0}E CPU cores"
        lines.append(f"Apple    {a.chip}, {gpu}{cpu_split}")
        bw = f", {a.bandwidth_gbs:.0f} GB/s" if a.bandwidth_gbs else ""
        lines.append(f"         unified memory {_gib(a.unified_memory_bytes)}{bw}; "
                     f"GPU budget (Metal) {_gib(a.gpu_wired_limit_bytes)}")  # fmt: skip
    if profile.gpus:
        for g in profile.gpus:
            mem = (f"{_gib(g.memory_free_bytes)} free of {_gib(g.memory_total_bytes)}"
                   if g.memory_total_bytes else "memory unknown")  # fmt: skip
            bw = ""
            if g.bandwidth_gbs:
                how = "" if g.bandwidth_source == "table" else f" ({g.bandwidth_source})"
                bw = f", {g.bandwidth_gbs:.0f} GB/s{how}"
            use = "used by llama.cpp" if g.usable_by_llama_cpp else "NOT used by this build"
            lines.append(f"GPU {g.index}    {g.name}: {mem}{bw} — {use}")
            extra = [x for x in (
                f"driver {g.driver_version}" if g.driver_version else "",
                f"CUDA {g.cuda_version}" if g.cuda_version else "",
                f"compute {g.compute_capability}" if g.compute_capability else "",
                g.pcie or "",
                "NVLink" if g.nvlink else "",
            ) if x]  # fmt: skip
            if extra:
                lines.append("         " + ", ".join(extra))
        total, free = llama_cpp_gpu_memory(profile)
        if sum(g.usable_by_llama_cpp for g in profile.gpus) > 1:
            lines.append(f"         llama.cpp can split layers over these: "
                         f"{_gib(free)} free of {_gib(total)}")  # fmt: skip
    elif not profile.apple:
        lines.append("GPU      none found (models run on the CPU)")
    lines.append(f"Disk     {_gib(profile.disk_free_bytes)} free where models are stored")
    e = profile.engines
    if e.llama_cpp_installed:
        off = "GPU offload" if e.llama_cpp_gpu_offload else "CPU only (no GPU offload)"
        lines.append(f"Engines  llama.cpp {e.llama_cpp_version or ''}: {off}".rstrip())
    else:
        lines.append("Engines  llama.cpp: not installed")
    mlx = f"MLX {e.mlx_version}" if e.mlx_installed else "MLX: not installed"
    lines.append(f"         {mlx}")
    for w in profile.warnings:
        lines.append(f"Warning: {w}")
    for u in profile.unreadable:
        lines.append(f"Could not read: {u}")
    return "\n".join(lines) + "\n"
