"""`ponder-cli doctor`: the human report, `--json` and `--refresh`, run for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from app.cli import main
from app.commands.doctor import format_report
from app.core.hardware import HardwareProfile
from app.core.hardware.nvidia import parse_nvidia_smi_csv

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "hardware"


def test_doctor_json_is_the_profile(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PONDER_CACHE_DIR", str(tmp_path))
    assert main(["doctor", "--json", "--refresh"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["cpu"]["cores_logical"] == os.cpu_count()
    assert d["engines"]["llama_cpp"]["installed"] is True
    assert HardwareProfile.from_dict(d).to_dict() == d


def test_doctor_human_report(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PONDER_CACHE_DIR", str(tmp_path))
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "CPU" in out and "RAM" in out and "Disk" in out and "Engines" in out
    assert "GB/s (measured)" in out


def test_report_with_gpus_and_warnings():
    profile = HardwareProfile.from_dict(
        {
            "os": "linux",
            "cpu": {"model": "x", "cores_physical": 8, "cores_logical": 16},
            "ram": {"total_bytes": 64 * 2**30, "available_bytes": 60 * 2**30},
            "engines": {"llama_cpp": {"installed": True, "gpu_offload": True}},
            "warnings": ["something to fix"],
            "unreadable": ["NVIDIA GPUs: nvidia-smi did not answer within 2 s"],
        }
    )
    from dataclasses import replace

    recorded = parse_nvidia_smi_csv((DATA / "nvidia/two_gpus.csv").read_text())
    gpus = tuple(replace(g, usable_by_llama_cpp=True) for g in recorded)
    text = format_report(replace(profile, gpus=gpus))
    assert "GPU 0    NVIDIA GeForce RTX 4090: 25.2 GB free of 25.8 GB, 1008 GB/s" in text
    assert "llama.cpp can split layers over these: 50.5 GB free of 51.5 GB" in text
    assert "GiB" not in text  # one unit everywhere: GB = 10^9 bytes, as the GUI shows
    assert "Warning: something to fix" in text
    assert "Could not read: NVIDIA GPUs: nvidia-smi did not answer within 2 s" in text


def test_ponder_cli_doctor_in_a_fresh_process(tmp_path):
    env = {**os.environ, "PONDER_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "app.cli", "doctor", "--json"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["os"] == ("linux" if sys.platform.startswith("linux") else
                                            json.loads(out.stdout)["os"])  # fmt: skip
