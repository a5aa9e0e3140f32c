"""The hardware probe: builds a `HardwareProfile` in well under a second, then caches it.

The slow parts run side by side in daemon threads, each with its own time limit: NVIDIA
(NVML, else nvidia-smi), Apple (sysctl, system_profiler), other GPUs (rocm-smi, lspci),
the engine check (a child interpreter) and the CPU copy benchmark. Whatever fails or
times out is named in `profile.unreadable`; the rest of the profile is still returned.
Per-machine facts that do not change (copy bandwidth, Apple GPU cores, engine build) are
kept in the user cache dir; `get_profile(refresh=True)` measures everything again.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.core.hardware import cache
from app.core.hardware.profile import (
    AppleChip,
    CpuInfo,
    EngineSupport,
    GpuInfo,
    HardwareProfile,
    RamInfo,
)

GIB = 1024**3
_lock = threading.Lock()
_cached: HardwareProfile | None = None


def get_profile(refresh: bool = False) -> HardwareProfile:
    """The profile of this machine: probed once per process, again only when asked."""
    global _cached
    with _lock:
        if _cached is None or refresh:
            _cached = probe(refresh=refresh)
        return _cached


def os_name() -> str:
    return {"darwin": "darwin", "win32": "windows"}.get(sys.platform, sys.platform)


def model_cache_dir() -> Path:
    """Where Hugging Face models live: HF_HUB_CACHE, HF_HOME/hub or ~/.cache/huggingface/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def disk_free_bytes(path: Path) -> int:
    """Free bytes on the disk holding `path` (its nearest existing parent)."""
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return 0


class _Task:
    """A function running in a daemon thread, awaited with a deadline."""

    def __init__(self, name: str, fn: Callable[[], Any]) -> None:
        self.name, self.fn = name, fn
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"probe-{name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:  # noqa: BLE001 - reported in the profile
            self.error = exc

    def wait(self, deadline: float) -> bool:
        self.thread.join(max(0.0, deadline - time.monotonic()))
        return not self.thread.is_alive()


def probe(refresh: bool = False, *, nvidia_timeout: float = 2.0, apple_timeout: float = 1.0,
          profiler_timeout: float = 3.0, engine_timeout: float = 5.0,
          bandwidth_budget_s: float = 0.25) -> HardwareProfile:  # fmt: skip
    """Probe this machine now. `refresh` ignores (and rewrites) the per-machine cache."""
    import psutil

    from app.core.hardware import apple, cpu, engines, nvidia, other_gpus

    unreadable: list[str] = []
    warnings: list[str] = []
    system = os_name()

    vm = psutil.virtual_memory()
    ram = RamInfo(total_bytes=int(vm.total), available_bytes=int(vm.available))
    logical = os.cpu_count() or 1
    physical = psutil.cpu_count(logical=False) or logical
    info = cpu.read_proc_cpuinfo() if system == "linux" else None
    if system == "linux" and info is None:
        unreadable.append("CPU flags: /proc/cpuinfo could not be read")
    cpu_model = str((info or {}).get("model") or "") or _platform_cpu_name()
    flags: tuple[str, ...] = tuple((info or {}).get("flags") or ())  # type: ignore[arg-type]

    key = cache.machine_key(cpu_model, logical, ram.total_bytes)
    if refresh:
        cached: dict[str, Any] = {}
    else:
        cached = cache.load(key)
    new_cache = dict(cached)

    start = time.monotonic()
    tasks: dict[str, tuple[_Task, float]] = {}

    def spawn(name: str, fn: Callable[[], Any], limit: float) -> None:
        tasks[name] = (_Task(name, fn), start + limit + 0.5)

    is_apple = apple.is_apple_silicon()
    if system in ("linux", "windows"):
        spawn("nvidia", lambda: nvidia.probe_nvidia(nvidia_timeout), 2 * nvidia_timeout)
    if system == "linux":
        spawn("other", lambda: other_gpus.probe_other_gpus(1.0), 2.0)
    if system == "darwin" and is_apple:
        cores_cached = cached.get("apple_gpu_cores")
        spawn("apple", lambda: apple.probe_apple(apple_timeout, cores_cached, profiler_timeout),
              apple_timeout + profiler_timeout)  # fmt: skip
    fingerprint = engines.install_fingerprint()
    eng_cached = cached.get("engines") or {}
    if eng_cached.get("fingerprint") == fingerprint and isinstance(eng_cached.get("result"), dict):
        engine_answer: dict[str, Any] = eng_cached["result"]
    else:
        engine_answer = {}
        spawn("engines", lambda: engines.check_engines(engine_timeout), engine_timeout)
    bandwidth = cached.get("cpu_bandwidth_gbs")
    if not isinstance(bandwidth, (int, float)):
        bandwidth = None
        spawn("bandwidth", lambda: cpu.measure_copy_bandwidth_gbs(bandwidth_budget_s),
              bandwidth_budget_s + 2.0)  # fmt: skip

    results: dict[str, Any] = {}
    for name, (task, deadline) in tasks.items():
        if not task.wait(deadline):
            unreadable.append(f"{_WHAT[name]}: still running after {deadline - start:.1f} s")
        elif task.error is not None:
            unreadable.append(f"{_WHAT[name]}: {type(task.error).__name__}: {task.error}")
        else:
            results[name] = task.result

    gpus: list[GpuInfo] = []
    if "nvidia" in results:
        nv = results["nvidia"]
        gpus.extend(nv.gpus)
        unreadable.extend(nv.unreadable)
    nvidia_on_bus: list[str] = []
    if "other" in results:
        others, nvidia_on_bus, notes = results["other"]
        gpus.extend(others)
        unreadable.extend(notes)
    if nvidia_on_bus and not any(g.vendor == "nvidia" for g in gpus):
        unreadable.append(f"NVIDIA GPU on the PCI bus ({nvidia_on_bus[0]}) but its driver did "
                          "not report it: is the NVIDIA driver installed and loaded?")  # fmt: skip

    chip: AppleChip | None = None
    if "apple" in results:
        ar = results["apple"]
        chip = ar.chip
        unreadable.extend(ar.unreadable)
        if ar.sysctl:
            flags = apple.sysctl_flags(ar.sysctl) or flags
            brand = ar.sysctl.get("machdep.cpu.brand_string")
            cpu_model = brand or cpu_model
        if chip is not None and chip.gpu_cores is not None:
            new_cache["apple_gpu_cores"] = chip.gpu_cores
    if "engines" in results:
        engine_answer, error = results["engines"]
        if error:
            unreadable.append(error)
        else:
            new_cache["engines"] = {"fingerprint": fingerprint, "result": engine_answer}
    if "bandwidth" in results:
        bandwidth = results["bandwidth"]
        new_cache["cpu_bandwidth_gbs"] = bandwidth
        new_cache["cpu_bandwidth_measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    llama = engine_answer.get("llama_cpp") or {}
    mlx = engine_answer.get("mlx") or {}
    backends = engines.llama_cpp_backends()
    support = EngineSupport(
        llama_cpp_installed=bool(llama.get("installed")),
        llama_cpp_gpu_offload=bool(llama.get("gpu_offload")),
        llama_cpp_version=llama.get("version"),
        mlx_installed=bool(mlx.get("installed")),
        mlx_version=mlx.get("version"),
        llama_cpp_backends=backends,
    )
    gpus = [_mark_usable(g, support) for g in gpus]
    warnings.extend(_warnings(gpus, chip, support, system))

    if new_cache != cached:
        cache.save(key, new_cache)

    return HardwareProfile(
        os=system,
        cpu=CpuInfo(
            model=cpu_model,
            cores_physical=int(physical),
            cores_logical=int(logical),
            flags=flags,
            bandwidth_gbs=bandwidth,
            arch=cpu.machine_arch(),
        ),  # fmt: skip
        ram=ram,
        gpus=tuple(gpus),
        apple=chip,
        disk_free_bytes=disk_free_bytes(model_cache_dir()),
        engines=support,
        warnings=tuple(warnings),
        unreadable=tuple(unreadable),
    )


_WHAT = {
    "nvidia": "NVIDIA GPUs",
    "other": "other GPUs",
    "apple": "Apple chip",
    "engines": "engine check",
    "bandwidth": "CPU bandwidth benchmark",
}


def _platform_cpu_name() -> str:
    import platform

    return platform.processor() or platform.machine() or "unknown CPU"


def _mark_usable(gpu: GpuInfo, eng: EngineSupport) -> GpuInfo:
    from dataclasses import replace

    if not (eng.llama_cpp_installed and eng.llama_cpp_gpu_offload):
        return replace(gpu, usable_by_llama_cpp=False)
    b = set(eng.llama_cpp_backends)
    usable = {
        "nvidia": "cuda" in b or "vulkan" in b or not b,  # no split libs: a static CUDA build
        "amd": "hip" in b or "vulkan" in b,
        "intel": "sycl" in b or "vulkan" in b,
    }.get(gpu.vendor, "vulkan" in b)
    return replace(gpu, usable_by_llama_cpp=usable)


def _fix_command(flag: str) -> str:
    return (f'CMAKE_ARGS="-D{flag}=on" {sys.executable} -m pip install --force-reinstall '
            "--no-cache-dir llama-cpp-python")  # fmt: skip


def _warnings(gpus: list[GpuInfo], chip: AppleChip | None, eng: EngineSupport,
              system: str) -> list[str]:  # fmt: skip
    out: list[str] = []
    nvidia_gpus = [g for g in gpus if g.vendor == "nvidia"]
    if not eng.llama_cpp_installed:
        out.append("llama-cpp-python is not installed (or does not import): GGUF models cannot "
                   "run here. Install it with: " + f"{sys.executable} -m pip install "
                   "llama-cpp-python")  # fmt: skip
    elif nvidia_gpus and not eng.llama_cpp_gpu_offload:
        out.append(f"An NVIDIA GPU ({nvidia_gpus[0].name}) is present, but the installed "
                   "llama-cpp-python was built without GPU offload, so models would run on the "
                   "CPU only. Rebuild it with CUDA (needs the CUDA toolkit): "
                   + _fix_command("GGML_CUDA"))  # fmt: skip
    elif chip is not None and not eng.llama_cpp_gpu_offload:
        out.append("The installed llama-cpp-python was built without Metal, so the Apple GPU "
                   "is not used. Rebuild it with: " + _fix_command("GGML_METAL"))  # fmt: skip
    for g in gpus:
        if g.vendor != "nvidia" and not g.usable_by_llama_cpp:
            out.append(f"{g.name} ({g.vendor.upper() if g.vendor == 'amd' else g.vendor}) is "
                       "not used by this llama.cpp build.")  # fmt: skip
        if g.memory_total_bytes and g.memory_free_bytes < 0.15 * g.memory_total_bytes:
            out.append(f"GPU {g.index} ({g.name}) has only {g.memory_free_bytes / 1e9:.1f} GB "
                       f"free of {g.memory_total_bytes / 1e9:.1f} GB: other programs are "
                       "using it.")  # fmt: skip
    return out


def llama_cpp_gpu_memory(profile: HardwareProfile) -> tuple[int, int]:
    """(total, free) bytes over the GPUs llama.cpp can split layers across, summed."""
    usable = [g for g in profile.gpus if g.usable_by_llama_cpp]
    return sum(g.memory_total_bytes for g in usable), sum(g.memory_free_bytes for g in usable)
