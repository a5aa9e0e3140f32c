"""The speed model against published measurements: predicted ÷ measured per row, and the
median |log ratio| for the fit rows and the held-out rows separately (targets: median within
±25%, no row off by more than 2×). Data: tests/data/speed_measurements.csv, each row with its
source. Run: `.venv/bin/python bench/speed_accuracy.py` (add --markdown for the README table).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.planner.speed_check import load_measurements, predict, summary  # noqa: E402


def main(markdown: bool = False) -> int:
    rows = load_measurements()
    if markdown:
        print("| set | machine | model | quant | measured tok/s | predicted | ratio |")
        print("|---|---|---|---|---|---|---|")
    else:
        print(f"{'set':8} {'machine':34} {'model':12} {'quant':9} {'meas':>7} {'pred':>7} ratio")
    for r in rows:
        p = predict(r)
        if markdown:
            print(f"| {r.set} | {r.machine} | {r.model} | {r.quant} | {r.tok_s:g} | {p:.1f} | "
                  f"{p / r.tok_s:.2f} |")  # fmt: skip
        else:
            print(f"{r.set:8} {r.machine:34} {r.model:12} {r.quant:9} {r.tok_s:7.2f} {p:7.2f} "
                  f"{p / r.tok_s:5.2f}")  # fmt: skip
    ok = True
    print()
    for which in ("fit", "held_out"):
        s = summary([r for r in rows if r.set == which])
        ok &= s.meets_targets
        worst = f"{s.worst.machine} {s.worst.model} {s.worst.quant}" if s.worst else "-"
        print(f"{which}: {s.n} rows, median |log ratio| = ×{s.median_factor:.2f}, worst "
              f"×{s.worst_factor:.2f} ({worst})")  # fmt: skip
    print("targets met" if ok else "TARGETS MISSED: median within ±25%, no row beyond 2×")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main("--markdown" in sys.argv))
