"""GPUs that are not NVIDIA or Apple: AMD (rocm-smi), anything on the PCI bus (lspci).

They are listed honestly; whether llama.cpp can use them depends on the installed build
(a HIP or Vulkan ggml backend), which the probe decides.
"""

from __future__ import annotations

import json
import shlex
import shutil

from app.core.hardware._run import run_command
from app.core.hardware.profile import GpuInfo

DISPLAY_CLASSES = ("VGA compatible controller", "3D controller", "Display controller")


def parse_lspci_mm(text: str) -> list[tuple[str, str]]:
    """(vendor, device) of display controllers from `lspci -mm` output."""
    found = []
    for line in text.splitlines():
        try:
            cells = shlex.split(line)
        except ValueError:
            continue
        if len(cells) >= 4 and cells[1] in DISPLAY_CLASSES:
            found.append((cells[2], cells[3]))
    return found


def vendor_of(vendor_text: str) -> str:
    v = vendor_text.lower()
    if "nvidia" in v:
        return "nvidia"
    if "amd" in v or "ati" in v.split():
        return "amd"
    if "intel" in v:
        return "intel"
    return "other"


def parse_rocm_smi_json(text: str) -> list[GpuInfo]:
    """AMD GPUs from `rocm-smi --showproductname --showmeminfo vram --json`."""
    try:
        data = json.loads(text)
    except ValueError:
        return []
    gpus = []
    for i, (card, info) in enumerate(sorted(data.items())):
        if not card.startswith("card") or not isinstance(info, dict):
            continue
        total = int(info.get("VRAM Total Memory (B)", 0) or 0)
        used = int(info.get("VRAM Total Used Memory (B)", 0) or 0)
        name = info.get("Card Series") or info.get("Card series") or "AMD GPU"
        gpus.append(GpuInfo(vendor="amd", name=str(name), memory_total_bytes=total,
                            memory_free_bytes=max(0, total - used), index=i))  # fmt: skip
    return gpus


def probe_other_gpus(timeout: float = 1.0) -> tuple[list[GpuInfo], list[str], list[str]]:
    """(non-NVIDIA GPUs, NVIDIA device names seen on the PCI bus, unreadable notes)."""
    gpus: list[GpuInfo] = []
    unreadable: list[str] = []
    nvidia_on_bus: list[str] = []
    if shutil.which("rocm-smi"):
        res = run_command(["rocm-smi", "--showproductname", "--showmeminfo", "vram", "--json"],
                          timeout)  # fmt: skip
        if res.ok:
            gpus.extend(parse_rocm_smi_json(res.stdout))
        else:
            unreadable.append(f"AMD GPUs: {res.error}")
    if shutil.which("lspci"):
        res = run_command(["lspci", "-mm"], timeout)
        if res.ok:
            for vendor_text, device in parse_lspci_mm(res.stdout):
                vendor = vendor_of(vendor_text)
                if vendor == "nvidia":
                    nvidia_on_bus.append(device)
                elif not (vendor == "amd" and any(g.vendor == "amd" for g in gpus)):
                    gpus.append(GpuInfo(vendor=vendor, name=device, memory_total_bytes=0,
                                        memory_free_bytes=0, index=len(gpus)))  # fmt: skip
        else:
            unreadable.append(f"PCI devices: {res.error}")
    return gpus, nvidia_on_bus, unreadable
