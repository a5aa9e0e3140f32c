"""Ranking by quality within what runs well: scores from the catalog, 4-bit before a bigger
model at 3 bits, and the fastest useful option (said so) when nothing is fast."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.hardware.profile import CpuInfo, HardwareProfile, RamInfo
from app.core.planner import rank
from app.core.planner.profile_file import read_hardware_file
from app.core.planner.ranking import tier

GIB = 1024**3
PROFILES = Path(__file__).resolve().parents[1] / "resources" / "hardware_profiles"


def example(name: str):
    return rank(read_hardware_file(PROFILES / f"{name}.json"))


def test_a_laptop_rtx_4060_gets_the_better_8b_on_its_gpu_not_the_14b_split():
    r = example("laptop-rtx4060-8gb")
    assert r.recommended.model == "deepseek-r1-0528-qwen3-8b" and r.recommended.mode == "gpu"
    assert "scores higher than the bigger" in r.reason and "entirely on your GPU" in r.reason


def test_an_rtx_5090_does_not_get_a_70b_split_with_ram():
    rec = example("desktop-rtx5090-64gb").recommended
    assert rec.mode == "gpu" and rec.bits >= 4.5 and rec.usable


def test_a_16gb_mac_gets_4_bit_or_better():
    rec = example("macbook-air-m2-16gb").recommended
    assert rec.format == "mlx" and rec.bits >= 4.5


def test_a_cpu_laptop_gets_a_7b_class_model_not_the_1_5b():
    rec = example("laptop-8gb-no-gpu").recommended
    assert rec.mode == "cpu" and rec.params_b >= 7 and rec.answer_seconds <= 600


@pytest.mark.parametrize("name", sorted(p.stem for p in PROFILES.glob("*.json")))
def test_nothing_that_runs_as_well_scores_higher(name):
    r = example(name)
    rec = r.recommended
    from app.core.catalog import load_catalog
    from app.core.planner.quality import quality

    cat = load_catalog()
    best = quality(cat, rec.model).score or 0
    for p in r.options:
        if tier(p) < tier(rec) or (tier(p) == tier(rec) and p.bits >= 4.5 and rec.bits >= 4.5
                                   and p.ctx >= rec.ctx):  # fmt: skip
            assert (quality(cat, p.model).score or 0) <= best, p


def test_when_nothing_is_fast_the_fastest_useful_option_is_recommended_and_said_so():
    slow = HardwareProfile("linux", CpuInfo("slow", 1, 1, (), 2.0), RamInfo(16 * GIB, 14 * GIB))
    r = rank(slow)
    rec = r.recommended
    assert tier(rec) == 2
    fastest = min(p.answer_seconds for p in r.options if tier(p) == 2)
    assert rec.answer_seconds == fastest
    assert "fastest" in r.reason and "Nothing answers" in r.reason
