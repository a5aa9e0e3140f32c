"""CPU: model, cores, the SIMD flags llama.cpp cares about, RAM, and a copy-bandwidth figure.

Flags come from /proc/cpuinfo on Linux (x86 `flags`, ARM `Features`), sysctl on macOS.
The bandwidth is measured by copying a buffer bigger than the caches for at most ~0.3 s
on a few threads (numpy releases the GIL while copying) and is counted STREAM-style:
bytes read plus bytes written per second. It is cached per machine by the probe.
"""

from __future__ import annotations

import os
import platform
import re
import threading
import time

# x86 /proc/cpuinfo flag -> reported name
X86_FLAGS = {
    "avx": "avx",
    "avx2": "avx2",
    "fma": "fma",
    "f16c": "f16c",
    "avx_vnni": "avx_vnni",
    "avx512f": "avx512f",
    "avx512bw": "avx512bw",
    "avx512vl": "avx512vl",
    "avx512_vnni": "avx512_vnni",
    "avx512_bf16": "avx512_bf16",
    "avx512vbmi": "avx512vbmi",
    "amx_tile": "amx_tile",
    "amx_int8": "amx_int8",
    "amx_bf16": "amx_bf16",
}
# ARM /proc/cpuinfo Features -> reported name (aarch64 kernels say "asimd" for NEON)
ARM_FEATURES = {
    "asimd": "neon",
    "neon": "neon",
    "asimddp": "dotprod",
    "i8mm": "i8mm",
    "asimdhp": "fp16",
    "bf16": "bf16",
    "sve": "sve",
    "sve2": "sve2",
    "sme": "sme",
}
# (implementer, part) -> core name, for ARM cpuinfo without a "model name"
ARM_PARTS = {
    ("0x41", "0xd03"): "ARM Cortex-A53",
    ("0x41", "0xd05"): "ARM Cortex-A55",
    ("0x41", "0xd08"): "ARM Cortex-A72",
    ("0x41", "0xd0b"): "ARM Cortex-A76",
    ("0x41", "0xd0c"): "ARM Neoverse-N1",
    ("0x41", "0xd40"): "ARM Neoverse-V1",
    ("0x41", "0xd49"): "ARM Neoverse-N2",
    ("0x41", "0xd4f"): "ARM Neoverse-V2",
    ("0x41", "0xd84"): "ARM Neoverse-V3",
    ("0x61", "0x022"): "Apple M1",
}


def parse_cpuinfo(text: str) -> dict[str, object]:
    """Model, flags, arch and core counts from /proc/cpuinfo text (x86 or ARM)."""
    blocks = [b for b in re.split(r"\n\s*\n", text) if b.strip()]
    first: dict[str, str] = {}
    processors = 0
    physical: set[tuple[str, str]] = set()
    for block in blocks:
        entry: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                entry[key.strip().lower()] = value.strip()
        if "processor" in entry:
            processors += 1
            if "core id" in entry:
                physical.add((entry.get("physical id", "0"), entry["core id"]))
        for k, v in entry.items():
            first.setdefault(k, v)
    raw_flags = set((first.get("flags") or "").split())
    raw_features = set((first.get("features") or "").split())
    if raw_features and not raw_flags:
        arch = "arm64" if first.get("cpu architecture", "8") >= "8" else "arm"
        flags = {ARM_FEATURES[f] for f in raw_features if f in ARM_FEATURES}
        model = first.get("model name") or ARM_PARTS.get(
            (first.get("cpu implementer", ""), first.get("cpu part", "")), "ARM CPU"
        )
    else:
        arch = "x86_64" if "lm" in raw_flags else ("x86" if raw_flags else "")
        flags = {X86_FLAGS[f] for f in raw_flags if f in X86_FLAGS}
        model = first.get("model name", "")
    return {
        "model": model,
        "flags": tuple(sorted(flags)),
        "arch": arch,
        "logical": processors,
        "physical": len(physical) or None,
        "cores_per_socket": int(first["cpu cores"])
        if first.get("cpu cores", "").isdigit()
        else None,
    }


def read_proc_cpuinfo(path: str = "/proc/cpuinfo") -> dict[str, object] | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return parse_cpuinfo(f.read())
    except OSError:
        return None


def machine_arch() -> str:
    m = platform.machine().lower()
    return {"amd64": "x86_64", "aarch64": "arm64"}.get(m, m)


def measure_copy_bandwidth_gbs(budget_s: float = 0.25, threads: int | None = None) -> float:
    """Copy bandwidth in GB/s (read + write bytes), measured for at most about `budget_s`.

    Each thread copies its own 32 MiB buffer (larger than any L3 slice it may hit) until
    the budget is spent; the best of the rounds is reported.
    """
    import numpy as np

    n_threads = threads or max(1, min(os.cpu_count() or 1, 8))
    size = 32 * 1024 * 1024
    srcs = [np.ones(size, dtype=np.uint8) for _ in range(n_threads)]
    dsts = [np.empty_like(s) for s in srcs]
    for s, d in zip(srcs, dsts, strict=True):
        np.copyto(d, s)  # touch the pages once so page faults are not measured
    deadline = time.perf_counter() + budget_s
    best = 0.0
    while True:
        barrier = threading.Barrier(n_threads + 1)

        def work(i: int, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            np.copyto(dsts[i], srcs[i])

        workers = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
        for w in workers:
            w.start()
        barrier.wait()
        t0 = time.perf_counter()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - t0
        if elapsed > 0:
            best = max(best, 2 * size * n_threads / elapsed / 1e9)
        if time.perf_counter() + elapsed > deadline:
            break
    return round(best, 1)
