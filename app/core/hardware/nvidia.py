"""NVIDIA GPUs: NVML (the `nvidia-ml-py` package) first, `nvidia-smi` CSV as the fallback.

Both report total and *free* memory per GPU; the profile lists every GPU separately.
NVML is optional: without the package, or without the driver's libnvidia-ml, the probe
asks nvidia-smi. A machine with neither is simply a machine without an NVIDIA GPU; a
driver that is installed but broken or hung lands in `unreadable`, in words.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from app.core.hardware._run import call_with_timeout, run_command
from app.core.hardware.bandwidth_tables import estimate_bandwidth_gbs, nvidia_bandwidth_gbs
from app.core.hardware.profile import GpuInfo

MIB = 1024 * 1024
SMI_FIELDS = (
    "index",
    "name",
    "memory.total",
    "memory.free",
    "driver_version",
    "compute_cap",
    "pcie.link.gen.max",
    "pcie.link.width.max",
)
SMI_BASIC_FIELDS = ("index", "name", "memory.total", "memory.free", "driver_version")


@dataclass
class NvidiaResult:
    gpus: list[GpuInfo] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    source: str = "none"  # "nvml", "nvidia-smi", "none"


def _value(raw: str) -> str | None:
    v = raw.strip()
    if not v or v.startswith("[") or v.upper() in ("N/A", "[N/A]"):
        return None  # "[N/A]", "[Not Supported]", "[Unknown Error]"
    return v


def _mib(raw: str | None) -> int:
    if raw is None:
        return 0
    number = raw.split()[0]  # "24564 MiB" with units, "24564" without
    try:
        return int(float(number) * MIB)
    except ValueError:
        return 0


def _with_bandwidth(gpu: GpuInfo) -> GpuInfo:
    gbs = nvidia_bandwidth_gbs(gpu.name)
    if gbs is not None:
        return replace(gpu, bandwidth_gbs=gbs, bandwidth_source="table")
    return gpu


def parse_nvidia_smi_csv(text: str, fields: tuple[str, ...] = SMI_FIELDS) -> list[GpuInfo]:
    """GPUs from `nvidia-smi --query-gpu=<fields> --format=csv[,noheader][,nounits]` output.

    A header line (plain `--format=csv`) overrides `fields`, and units such as "MiB" are
    tolerated, so recorded output from other queries parses too.
    """
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if lines and "name" in [c.strip().split(" [")[0] for c in lines[0].split(",")]:
        fields = tuple(c.strip().split(" [")[0] for c in lines[0].split(","))
        lines = lines[1:]
    gpus: list[GpuInfo] = []
    for n, line in enumerate(lines):
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != len(fields):
            continue  # an error message or a name with a comma we cannot split safely
        row = dict(zip(fields, cells, strict=True))
        name = _value(row.get("name", "")) or "NVIDIA GPU"
        index = row.get("index")
        gen, width = (
            _value(row.get("pcie.link.gen.max", "")),
            _value(row.get("pcie.link.width.max", "")),
        )
        total = _mib(_value(row.get("memory.total", "")))
        free_raw = _value(row.get("memory.free", ""))
        gpus.append(
            _with_bandwidth(
                GpuInfo(
                    vendor="nvidia",
                    name=name,
                    memory_total_bytes=total,
                    memory_free_bytes=_mib(free_raw) if free_raw is not None else total,
                    index=int(index) if index and index.isdigit() else n,
                    driver_version=_value(row.get("driver_version", "")),
                    compute_capability=_value(row.get("compute_cap", "")),
                    pcie=f"PCIe {gen}.0 x{width}" if gen and width else None,
                )
            )
        )
    return gpus


def probe_nvidia_smi(timeout: float = 2.0, exe: str | None = None) -> NvidiaResult:
    """Ask nvidia-smi; a missing binary means no NVIDIA driver, a failure or hang is unreadable."""
    exe = exe or shutil.which("nvidia-smi")
    if not exe:
        return NvidiaResult()
    fields: tuple[str, ...] = SMI_FIELDS
    res = run_command([exe, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"],
                      timeout)  # fmt: skip
    if not res.ok and res.returncode is not None and "field" in (res.stdout + res.stderr).lower():
        fields = SMI_BASIC_FIELDS  # an old driver that does not know compute_cap / pcie.*
        res = run_command([exe, f"--query-gpu={','.join(fields)}",
                           "--format=csv,noheader,nounits"], timeout)  # fmt: skip
    if not res.ok:
        return NvidiaResult(unreadable=[f"NVIDIA GPUs: {res.error}"], source="nvidia-smi")
    gpus = parse_nvidia_smi_csv(res.stdout, fields)
    if not gpus:
        first = res.stdout.strip().splitlines()[:1]
        why = first[0] if first else "no output"
        return NvidiaResult(
            unreadable=[f"NVIDIA GPUs: nvidia-smi said {why!r}"], source="nvidia-smi"
        )
    return NvidiaResult(gpus=gpus, source="nvidia-smi")


def _nvml_read() -> list[GpuInfo]:
    import pynvml  # nvidia-ml-py; optional

    pynvml.nvmlInit()
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        try:
            cuda = pynvml.nvmlSystemGetCudaDriverVersion_v2()
            cuda_version: str | None = f"{cuda // 1000}.{cuda % 1000 // 10}"
        except pynvml.NVMLError:
            cuda_version = None
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            name = _text(pynvml.nvmlDeviceGetName(h))
            cc = _try(lambda h=h: "{}.{}".format(*pynvml.nvmlDeviceGetCudaComputeCapability(h)))
            gen = _try(lambda h=h: pynvml.nvmlDeviceGetMaxPcieLinkGeneration(h))
            width = _try(lambda h=h: pynvml.nvmlDeviceGetMaxPcieLinkWidth(h))
            nvlink = _try(lambda h=h: pynvml.nvmlDeviceGetNvLinkState(h, 0) == 1)
            gpu = _with_bandwidth(
                GpuInfo(
                    vendor="nvidia",
                    name=name,
                    memory_total_bytes=int(mem.total),
                    memory_free_bytes=int(mem.free),
                    index=i,
                    driver_version=driver,
                    cuda_version=cuda_version,
                    compute_capability=cc,
                    pcie=f"PCIe {gen}.0 x{width}" if gen and width else None,
                    nvlink=bool(nvlink) if nvlink is not None else None,
                )
            )
            if gpu.bandwidth_gbs is None:
                bus = _try(lambda h=h: pynvml.nvmlDeviceGetMemoryBusWidth(h))
                clock = _try(lambda h=h: pynvml.nvmlDeviceGetMaxClockInfo(h, pynvml.NVML_CLOCK_MEM))
                if bus and clock:
                    # NVML's memory clock is the DDR base clock: two transfers per clock.
                    gbs = round(estimate_bandwidth_gbs(int(bus), float(clock), 2), 1)
                    gpu = replace(gpu, bandwidth_gbs=gbs, bandwidth_source="estimated")
            gpus.append(gpu)
        return gpus
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass


def _text(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _try(fn: Callable[..., Any]) -> Any:
    """fn() (called with no arguments), or None when NVML does not support it."""
    try:
        return fn()
    except Exception:  # noqa: BLE001 - NVMLError_NotSupported and friends
        return None


def probe_nvidia(timeout: float = 2.0) -> NvidiaResult:
    """NVML if it answers, else nvidia-smi; failures of both are reported in words."""
    import importlib.util

    nvml_note: str | None = None
    if importlib.util.find_spec("pynvml") is not None:
        ok, value = call_with_timeout(_nvml_read, timeout)
        if ok and isinstance(value, list):
            return NvidiaResult(gpus=value, source="nvml")
        if value is None:
            nvml_note = f"NVML did not answer within {timeout:g} s"
        else:
            text = str(value) or type(value).__name__
            # No libnvidia-ml: no NVIDIA driver here, the normal case on most machines.
            if "Library Not Found" not in text and "NotFound" not in type(value).__name__:
                nvml_note = f"NVML: {text}"
    smi = probe_nvidia_smi(timeout)
    if smi.gpus:
        return smi
    if nvml_note:
        smi.unreadable.insert(0, f"NVIDIA GPUs: {nvml_note}")
    return smi
