"""Hardware probe: the real probe on this machine, parsers on recorded outputs, hangs.

Recorded outputs live in tests/data/hardware (see its README for where each came from).
"""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from app.core.hardware import HardwareProfile, apple, cpu, nvidia, other_gpus, probe
from app.core.hardware._run import call_with_timeout, run_command
from app.core.hardware.bandwidth_tables import (
    apple_bandwidth_gbs,
    estimate_bandwidth_gbs,
    nvidia_bandwidth_gbs,
)

DATA = Path(__file__).parent / "data" / "hardware"
GIB = 1024**3
MIB = 1024**2


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PONDER_CACHE_DIR", str(tmp_path / "cache"))


def read(rel: str) -> str:
    return (DATA / rel).read_text(encoding="utf-8")


def fake_exe(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


# --- the real probe on this machine -------------------------------------------------


def test_real_probe_on_this_machine_is_fast_and_right():
    t0 = time.perf_counter()
    p = probe.probe()
    first = time.perf_counter() - t0
    assert first < 1.0, f"cold probe took {first:.2f} s"
    assert p.os == ("linux" if sys.platform.startswith("linux") else p.os)
    assert p.cpu.cores_logical == os.cpu_count()
    assert p.cpu.cores_physical == (psutil.cpu_count(logical=False) or os.cpu_count())
    vm = psutil.virtual_memory()
    assert p.ram.total_bytes == vm.total
    assert abs(p.ram.available_bytes - vm.available) < 0.2 * vm.total
    assert p.cpu.bandwidth_gbs and p.cpu.bandwidth_gbs > 0.5
    assert p.disk_free_bytes > 0
    assert p.engines.llama_cpp_installed  # a dependency of the project
    if not os.path.exists("/dev/nvidiactl"):  # no GPU on the test machines
        assert [g for g in p.gpus if g.vendor == "nvidia"] == []
    assert p.unreadable == (), p.unreadable

    t0 = time.perf_counter()
    again = probe.probe()  # second call: bandwidth and engine check come from the cache
    assert time.perf_counter() - t0 < 0.5
    assert again.cpu.bandwidth_gbs == p.cpu.bandwidth_gbs


def test_profile_round_trips_and_has_the_contract_keys():
    d = probe.probe().to_dict()
    for key in ("os", "cpu", "ram", "gpus", "apple", "disk_free_bytes", "engines", "warnings"):
        assert key in d
    assert {"model", "cores_physical", "cores_logical", "flags", "bandwidth_gbs"} <= set(d["cpu"])
    assert {"installed", "gpu_offload"} <= set(d["engines"]["llama_cpp"])
    assert "installed" in d["engines"]["mlx"]
    assert HardwareProfile.from_dict(d) == HardwareProfile.from_dict(d)
    assert HardwareProfile.from_dict(d).to_dict() == d


def test_from_dict_tolerates_profiles_written_before_backends_existed():
    d = probe.probe().to_dict()
    del d["engines"]["llama_cpp"]["backends"]
    assert HardwareProfile.from_dict(d).engines.llama_cpp_backends == ()


def test_refresh_measures_bandwidth_again(tmp_path):
    from app.core.hardware import cache

    p = probe.probe()
    key = cache.machine_key(p.cpu.model, p.cpu.cores_logical, p.ram.total_bytes)
    cache.save(key, {**cache.load(key), "cpu_bandwidth_gbs": 1234.5})
    assert probe.probe().cpu.bandwidth_gbs == 1234.5  # cached value is used
    fresh = probe.probe(refresh=True)
    assert fresh.cpu.bandwidth_gbs != 1234.5
    assert cache.load(key)["cpu_bandwidth_gbs"] == fresh.cpu.bandwidth_gbs


def test_get_profile_caches_in_process():
    a = probe.get_profile(refresh=True)
    assert probe.get_profile() is a
    assert probe.get_profile(refresh=True) is not a


# --- hangs and failures do not block -------------------------------------------------


def test_hung_nvidia_smi_does_not_block(tmp_path, monkeypatch):
    fake_exe(tmp_path, "nvidia-smi", "sleep 30")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(nvidia, "_nvml_read", lambda: (_ for _ in ()).throw(
        RuntimeError("NVML Shared Library Not Found")))  # fmt: skip
    t0 = time.perf_counter()
    result = nvidia.probe_nvidia(timeout=0.5)
    assert time.perf_counter() - t0 < 2.0
    assert result.gpus == []
    assert result.unreadable and "did not answer within 0.5 s" in result.unreadable[0]


def test_full_probe_with_hung_nvidia_smi_still_returns(tmp_path, monkeypatch):
    fake_exe(tmp_path, "nvidia-smi", "sleep 30")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    t0 = time.perf_counter()
    p = probe.probe(nvidia_timeout=0.3)
    assert time.perf_counter() - t0 < 2.0
    assert any("NVIDIA GPUs" in u and "did not answer" in u for u in p.unreadable)
    assert p.cpu.cores_logical == os.cpu_count()


def test_broken_driver_is_reported_in_words(tmp_path, monkeypatch):
    msg = read("nvidia/driver_not_loaded.txt").strip()
    exe = fake_exe(tmp_path, "nvidia-smi", f'echo "{msg}"\nexit 9')
    result = nvidia.probe_nvidia_smi(timeout=2, exe=str(exe))
    assert result.gpus == []
    assert "couldn't communicate with the NVIDIA driver" in result.unreadable[0]


def test_nvml_missing_falls_back_to_nvidia_smi(tmp_path, monkeypatch):
    csv = read("nvidia/two_gpus.csv")
    (tmp_path / "out.csv").write_text(csv)
    fake_exe(tmp_path, "nvidia-smi", f"cat '{tmp_path / 'out.csv'}'")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    not_found = read("nvidia/nvml_library_not_found.txt").splitlines()[-1].split(": ", 1)[1]
    monkeypatch.setattr(nvidia, "_nvml_read", lambda: (_ for _ in ()).throw(
        RuntimeError(not_found)))  # fmt: skip
    result = nvidia.probe_nvidia(timeout=2)
    assert result.source == "nvidia-smi" and len(result.gpus) == 2
    assert result.unreadable == []


def test_nvml_failure_other_than_missing_library_is_reported(monkeypatch):
    mismatch = read("nvidia/nvml_driver_mismatch.txt").strip()
    monkeypatch.setattr(nvidia, "_nvml_read", lambda: (_ for _ in ()).throw(
        RuntimeError(mismatch)))  # fmt: skip
    monkeypatch.setattr(nvidia.shutil, "which", lambda _name: None)
    result = nvidia.probe_nvidia(timeout=1)
    if result.source == "none" and not result.unreadable:
        pytest.skip("pynvml (nvidia-ml-py) is not installed: NVML is not tried")
    assert "Driver/library version mismatch" in result.unreadable[0]


def test_hung_nvml_call_is_abandoned(monkeypatch):
    monkeypatch.setattr(nvidia, "_nvml_read", lambda: time.sleep(30))
    monkeypatch.setattr(nvidia.shutil, "which", lambda _name: None)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())  # NVML "present"
    t0 = time.perf_counter()
    result = nvidia.probe_nvidia(timeout=0.3)
    assert time.perf_counter() - t0 < 1.5
    assert "NVML did not answer within 0.3 s" in result.unreadable[0]


def test_run_command_kills_grandchildren_holding_the_pipe(tmp_path):
    exe = fake_exe(tmp_path, "slow", "sleep 30 &\nsleep 30")
    t0 = time.perf_counter()
    res = run_command([str(exe)], timeout=0.3)
    assert time.perf_counter() - t0 < 1.5
    assert not res.ok and "did not answer" in (res.error or "")


def test_run_command_missing_binary():
    res = run_command(["surely-not-installed-ponder-xyz"], timeout=1)
    assert not res.ok and "not installed" in (res.error or "")


def test_call_with_timeout():
    assert call_with_timeout(lambda: 42, 1) == (True, 42)
    ok, err = call_with_timeout(lambda: 1 / 0, 1)
    assert not ok and isinstance(err, ZeroDivisionError)


# --- nvidia-smi parser on recorded output ------------------------------------------


def test_one_gpu_nearly_full():
    (g,) = nvidia.parse_nvidia_smi_csv(read("nvidia/one_gpu_nearly_full.csv"))
    assert g.vendor == "nvidia" and g.name == "NVIDIA GeForce RTX 3050"
    assert g.memory_total_bytes == 8192 * MIB and g.memory_free_bytes == 834 * MIB
    assert g.driver_version == "550.120"
    assert g.compute_capability is None and g.pcie is None  # "[N/A]"
    assert g.bandwidth_gbs == 224.0 and g.bandwidth_source == "table"
    warnings = probe._warnings([g], None, probe.EngineSupport(llama_cpp_installed=True), "linux")
    assert any("only 0.9 GB free of 8.6 GB" in w for w in warnings)


def test_two_gpus_listed_separately_and_summed_for_llama_cpp():
    gpus = nvidia.parse_nvidia_smi_csv(read("nvidia/two_gpus.csv"))
    assert [g.index for g in gpus] == [0, 1]
    assert [g.memory_free_bytes // MIB for g in gpus] == [24057, 24105]
    assert all(g.bandwidth_gbs == 1008.0 for g in gpus)
    eng = probe.EngineSupport(llama_cpp_installed=True, llama_cpp_gpu_offload=True,
                              llama_cpp_backends=("cuda",))  # fmt: skip
    marked = tuple(probe._mark_usable(g, eng) for g in gpus)
    profile = probe.probe()
    from dataclasses import replace

    total, free = probe.llama_cpp_gpu_memory(replace(profile, gpus=marked))
    assert total == 2 * 24564 * MIB and free == (24057 + 24105) * MIB


def test_header_and_units_are_understood():
    gpus = nvidia.parse_nvidia_smi_csv(read("nvidia/h200_with_header_and_units.csv"))
    assert len(gpus) == 2
    assert gpus[0].memory_total_bytes == 143771 * MIB
    assert gpus[0].memory_free_bytes == 143771 * MIB  # no free column: assume total
    assert gpus[0].pcie == "PCIe 5.0 x16" and gpus[1].index == 1
    assert gpus[0].bandwidth_gbs == 4800.0


def test_error_text_is_not_a_gpu():
    assert nvidia.parse_nvidia_smi_csv(read("nvidia/driver_not_loaded.txt")) == []


def test_nvidia_without_offload_warns_with_the_fix():
    (g,) = nvidia.parse_nvidia_smi_csv(read("nvidia/one_gpu_nearly_full.csv"))
    eng = probe.EngineSupport(llama_cpp_installed=True, llama_cpp_gpu_offload=False)
    g = probe._mark_usable(g, eng)
    assert not g.usable_by_llama_cpp
    (w, *_) = probe._warnings([g], None, eng, "linux")
    assert "without GPU offload" in w and 'CMAKE_ARGS="-DGGML_CUDA=on"' in w
    assert "pip install --force-reinstall --no-cache-dir llama-cpp-python" in w


# --- bandwidth tables ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "gbs"),
    [
        ("NVIDIA GeForce RTX 4090", 1008.0),
        ("NVIDIA GeForce RTX 4070 Ti SUPER", 672.0),
        ("NVIDIA GeForce RTX 4070 Ti", 504.0),
        ("NVIDIA GeForce RTX 5090", 1792.0),
        ("NVIDIA GeForce RTX 3090", 936.0),
        ("NVIDIA GeForce RTX 2080 Ti", 616.0),
        ("NVIDIA A100-SXM4-80GB", 2039.0),
        ("NVIDIA A100 80GB PCIe", 1935.0),
        ("NVIDIA A10", 600.0),
        ("NVIDIA H100 80GB HBM3", 3350.0),
        ("NVIDIA H100 PCIe", 2039.0),
        ("NVIDIA H200", 4800.0),
        ("NVIDIA L40S", 864.0),
        ("NVIDIA L4", 300.0),
        ("Tesla T4", 320.0),
        ("Some Future GPU", None),
    ],
)
def test_nvidia_table(name, gbs):
    assert nvidia_bandwidth_gbs(name) == gbs


@pytest.mark.parametrize(
    ("chip", "cores", "gbs"),
    [
        ("Apple M1", 7, 68.25),
        ("Apple M1 Max", 32, 400.0),
        ("Apple M2 Ultra", 76, 800.0),
        ("Apple M3 Pro", 18, 150.0),
        ("Apple M3 Max", 30, 300.0),
        ("Apple M3 Max", 40, 400.0),
        ("Apple M3 Ultra", 80, 819.0),
        ("Apple M4 Max", 32, 410.0),
        ("Apple M4 Max", 40, 546.0),
        ("Apple M4 Pro", None, 273.0),
        ("Intel(R) Core(TM) i9-9980HK", None, None),
    ],
)
def test_apple_table(chip, cores, gbs):
    assert apple_bandwidth_gbs(chip, cores) == gbs


def test_estimate_from_bus_width_and_clock():
    # RTX 3090: 384-bit GDDR6X, NVML max memory clock 9751 MHz -> ~936 GB/s
    assert round(estimate_bandwidth_gbs(384, 9751, 2)) == 936


# --- Apple parsers on recorded output -------------------------------------------------


def test_m1_system_profiler():
    assert apple.parse_gpu_cores(read("apple/m1_system_profiler.json")) == ("Apple M1", 7)


def test_m3_max_sysctl_and_system_profiler():
    values = apple.parse_sysctl(read("apple/m3_max_sysctl.txt"))
    model, cores = apple.parse_gpu_cores(read("apple/m3_max_system_profiler.json"))
    chip = apple.chip_from(values, model, cores)
    assert chip.chip == "Apple M3 Max" and chip.gpu_cores == 40
    assert chip.unified_memory_bytes == 36 * GIB
    assert chip.gpu_wired_limit_bytes == 27 * GIB  # 3/4 of 36 GB
    assert (chip.performance_cores, chip.efficiency_cores) == (10, 4)
    assert chip.bandwidth_gbs == 400.0
    assert set(apple.sysctl_flags(values)) >= {"neon", "dotprod", "i8mm", "bf16", "fp16"}
    assert "sme" not in apple.sysctl_flags(values)


def test_m2_max_sysctl_flags_and_brand():
    values = apple.parse_sysctl(read("apple/m2_max_sysctl.txt"))
    assert values["machdep.cpu.brand_string"] == "Apple M2 Max"
    assert set(apple.sysctl_flags(values)) >= {"neon", "dotprod", "i8mm"}
    chip = apple.chip_from({**values, "hw.memsize": str(64 * GIB)}, None, 38)
    assert chip.bandwidth_gbs == 400.0 and chip.gpu_wired_limit_bytes == 48 * GIB


def test_first_m1_brand_string_falls_back_to_the_gpu_model():
    values = apple.parse_sysctl(read("apple/m1_sysctl_machdep.txt"))
    assert values["machdep.cpu.brand_string"] == "Apple processor"
    model, cores = apple.parse_gpu_cores(read("apple/m1_system_profiler.json"))
    chip = apple.chip_from({**values, "hw.memsize": str(16 * GIB)}, model, cores)
    assert chip.chip == "Apple M1" and chip.bandwidth_gbs == 68.25
    assert chip.gpu_wired_limit_bytes == int(16 * GIB * 2 / 3)  # ~10.7 GiB, FACTS: ~10.9 GB


def test_wired_limit_sysctl_wins_and_ultra_class_gets_three_quarters():
    assert apple.default_wired_limit_bytes(192 * GIB) == 144 * GIB
    assert apple.default_wired_limit_bytes(512 * GIB) == 384 * GIB
    assert apple.default_wired_limit_bytes(512 * GIB, wired_limit_mb=480_000) == 480_000 * MIB


def test_broken_system_profiler_json():
    assert apple.parse_gpu_cores("not json") == (None, None)
    assert apple.parse_gpu_cores("{}") == (None, None)


def test_slow_system_profiler_does_not_block(tmp_path, monkeypatch):
    values = read("apple/m3_max_sysctl.txt")
    (tmp_path / "sysctl.txt").write_text(values)
    fake_exe(tmp_path, "sysctl", f"cat '{tmp_path / 'sysctl.txt'}'")
    fake_exe(tmp_path, "system_profiler", "sleep 30")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    t0 = time.perf_counter()
    res = apple.probe_apple(timeout=1, profiler_timeout=0.3)
    assert time.perf_counter() - t0 < 2
    assert res.chip is not None and res.chip.chip == "Apple M3 Max" and res.chip.gpu_cores is None
    assert res.chip.bandwidth_gbs == 400.0
    assert "system_profiler did not answer within 0.3 s" in res.unreadable[0]


# --- /proc/cpuinfo on recorded output ---------------------------------------------------


def test_cpuinfo_x86_with_avx512():
    info = cpu.parse_cpuinfo(read("cpuinfo/x86_amd_epyc_avx512.txt"))
    assert info["model"] == "AMD EPYC" and info["arch"] == "x86_64"
    assert {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "fma", "f16c"} <= set(info["flags"])
    assert info["logical"] == 2 and info["physical"] == 2


def test_cpuinfo_x86_without_avx512():
    info = cpu.parse_cpuinfo(read("cpuinfo/x86_intel_core_ultra_no_avx512.txt"))
    assert info["model"] == "Intel(R) Core(TM) Ultra 9 285"
    flags = set(info["flags"])
    assert {"avx", "avx2", "avx_vnni", "fma", "f16c"} <= flags
    assert not any(f.startswith("avx512") for f in flags)


def test_cpuinfo_arm():
    info = cpu.parse_cpuinfo(read("cpuinfo/arm_graviton2_neoverse_n1.txt"))
    assert info["arch"] == "arm64" and info["model"] == "ARM Neoverse-N1"
    assert set(info["flags"]) == {"neon", "dotprod", "fp16"}
    assert "i8mm" not in info["flags"]


def test_real_cpuinfo_matches_os():
    if not Path("/proc/cpuinfo").exists():
        pytest.skip("not Linux")
    info = cpu.read_proc_cpuinfo()
    assert info is not None and info["logical"] == os.cpu_count()


def test_copy_bandwidth_stays_in_budget():
    t0 = time.perf_counter()
    gbs = cpu.measure_copy_bandwidth_gbs(budget_s=0.1)
    assert time.perf_counter() - t0 < 0.8 and gbs > 0.5


# --- other GPUs ------------------------------------------------------------------------


def test_lspci_lists_amd_as_not_used_by_a_cpu_build():
    text = ('00:02.0 "VGA compatible controller" "Intel Corporation" "Device 46a6" -r0c "" ""\n'
            '03:00.0 "VGA compatible controller" "Advanced Micro Devices, Inc. [AMD/ATI]" '
            '"Navi 31 [Radeon RX 7900 XTX]" -rc8 "" ""\n'
            '00:1f.3 "Audio device" "Intel Corporation" "Device 51c8" -r01 "" ""\n')  # fmt: skip
    found = other_gpus.parse_lspci_mm(text)
    assert [other_gpus.vendor_of(v) for v, _ in found] == ["intel", "amd"]
    amd = probe.GpuInfo(vendor="amd", name=found[1][1], memory_total_bytes=0, memory_free_bytes=0)
    eng = probe.EngineSupport(llama_cpp_installed=True)
    assert not probe._mark_usable(amd, eng).usable_by_llama_cpp
    warnings = probe._warnings([amd], None, eng, "linux")
    assert any("not used by this llama.cpp build" in w for w in warnings)
    vulkan = probe.EngineSupport(llama_cpp_installed=True, llama_cpp_gpu_offload=True,
                                 llama_cpp_backends=("vulkan",))  # fmt: skip
    assert probe._mark_usable(amd, vulkan).usable_by_llama_cpp


def test_the_engine_builds_are_checked_in_a_child_process():
    from app.core.hardware.engines import check_engines

    found, error = check_engines(timeout=30)
    assert error is None
    assert found["llama_cpp"]["installed"] is True and found["llama_cpp"]["version"]
    assert found["llama_cpp"]["gpu_offload"] is False  # the CPU build of this machine and CI
    assert found["mlx"]["installed"] is True  # `make test` installs mlx[cpu]


def test_the_app_entry_point_answers_the_engine_check():
    # The frozen app has no `python -m`: it runs itself with --engine-check.
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-m", "app", "--engine-check"], capture_output=True,
                         text=True, timeout=60, cwd=root)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["llama_cpp"]["installed"] is True
