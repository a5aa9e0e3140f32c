"""Math typesetting: coverage and time per formula on tests/data/math_formulas.txt.

Each formula is typeset as app/ui/math_render.py does in the chat (ziamath LaTeX → SVG,
QSvgRenderer → QImage, 14 px text): first render (empty cache; ziamath already imported, as
it is on its loading thread before the first answer finishes), then again from the cache.
The one-off import of ziamath (it reads its font) is timed apart. Wall time and the GUI
thread's CPU time are both shown: on a shared, loaded machine the wall time includes waiting
for a core, the CPU time is what a formula costs.

    QT_QPA_PLATFORM=offscreen python bench/math_render.py [--size 14] [--rounds 3]

Targets: >= 95% rendered, median < 5 ms per formula.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PySide6.QtGui import QFont  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.ui import math_render  # noqa: E402

FORMULAS = ROOT / "tests" / "data" / "math_formulas.txt"


def ms(values: list[float], q: float) -> float:
    """The q-quantile of `values`, in milliseconds."""
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=14, help="text size in pixels")
    parser.add_argument("--rounds", type=int, default=3, help="cold passes (new colour each)")
    args = parser.parse_args()
    QApplication(sys.argv[:1])
    lines = FORMULAS.read_text(encoding="utf-8").splitlines()
    tex = [line for line in lines if line.strip() and not line.startswith("#")]
    font = QFont()
    font.setPixelSize(args.size)
    t0 = time.perf_counter()
    math_render.ready(wait=True)
    print(f"import ziamath (once, on a thread): {1000 * (time.perf_counter() - t0):.0f} ms")
    first: list[float] = []
    cpu: list[float] = []
    failed: set[str] = set()
    for r in range(args.rounds):
        colour = f"#1f23{r:02x}"  # a colour not cached yet: every formula typeset afresh
        for f in tex:
            t, c = time.perf_counter(), time.thread_time()
            if math_render.render(f, False, font, colour) is None:
                failed.add(f)
            first.append(time.perf_counter() - t)
            cpu.append(time.thread_time() - c)
    cached = []
    for f in tex:
        t = time.perf_counter()
        math_render.render(f, False, font, "#1f2300")
        cached.append(time.perf_counter() - t)
    n = len(tex)
    print(f"formulas: {n}, rendered: {n - len(failed)} ({100 * (n - len(failed)) / n:.1f}%)")
    for f in sorted(failed):
        print(f"  left as source: {f}")
    print(
        f"first render: median {ms(first, 0.5):.2f} ms, p95 {ms(first, 0.95):.2f} ms, "
        f"max {ms(first, 1.0):.2f} ms ({args.rounds} passes)"
    )
    print(f"first render, CPU time: median {ms(cpu, 0.5):.2f} ms, p95 {ms(cpu, 0.95):.2f} ms")
    print(f"cached: median {ms(cached, 0.5):.3f} ms, p95 {ms(cached, 0.95):.3f} ms")
    print(f"mean {1000 * statistics.mean(first):.2f} ms per formula first time (wall)")
    print(f"machine load (1 min): {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
