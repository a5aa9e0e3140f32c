"""Soak: 200 chat turns through the real window and engine, with random Stops and Answer now.

The window runs offscreen with the real engine process (llama.cpp) on a scripted model that
thinks in a loop until it is stopped, answered-now or reaches the length limit. Each turn
picks at random: let it run to the limit, press Stop after a random delay, or press Answer
now after a random delay (the model then answers). Every ten turns a new chat starts (as a
user would; the context would fill otherwise). A 5 ms timer on the GUI thread records the
longest event-loop stall. Memory (resident set) of the GUI process and of the engine
process is read after a warm-up and at the end.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/soak.py [--turns 200] [--seed 7]

Targets: memory growth after warm-up under 50 MB in each process; no stall over 50 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import psutil  # noqa: E402
from PySide6.QtCore import QCoreApplication, QEvent, QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.core.chat_store import ChatStore  # noqa: E402
from app.core.engine import EngineClient  # noqa: E402
from app.core.generation_settings import GenerationSettings  # noqa: E402
from app.ui.main_window import MainWindow  # noqa: E402
from scripted import write_scripted_gguf  # noqa: E402

MB = 1024 * 1024


def pump_until(done, timeout_s: float) -> bool:
    """Run the event loop until `done()` or the time is up."""
    end = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > end:
            return False
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        # deleteLater() is carried out by a running event loop, not by processEvents():
        # without this, every closed chat's widgets would pile up as if leaked
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        time.sleep(0.002)
    return True


class StallMeter:
    """A 5 ms timer: the longest gap between its ticks is the longest event-loop stall."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.longest = 0.0
        self.over_50ms = 0
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        gap = now - self.last
        self.last = now
        self.longest = max(self.longest, gap)
        self.over_50ms += gap > 0.05

    def reset(self) -> None:
        self.last, self.longest, self.over_50ms = time.perf_counter(), 0.0, 0


def rss(pid: int | None) -> int:
    try:
        return psutil.Process(pid).memory_info().rss if pid else 0
    except psutil.Error:
        return 0


def run(turns: int, seed: int) -> int:
    rng = random.Random(seed)
    app = QApplication.instance() or QApplication(sys.argv)
    with tempfile.TemporaryDirectory() as tmp:
        model = write_scripted_gguf(Path(tmp) / "loop.gguf", "never_closes")
        client = EngineClient(load_timeout_s=120)
        w = MainWindow(ChatStore(Path(tmp) / "chats.sqlite3"), client, n_ctx=8192)
        w.show()
        w.controller.load_model(str(model))
        if not pump_until(lambda: w.controller.model_info is not None, 120):
            print("the model did not load")
            return 1
        w.controller.set_settings(GenerationSettings(max_tokens=400))
        meter = StallMeter()
        counts = {"limit": 0, "stop": 0, "answer_now": 0}
        warm: tuple[int, int] | None = None
        t0 = time.monotonic()
        for turn in range(turns):
            if turn % 10 == 0:
                w.controller.new_conversation()
            action = rng.choice(["limit", "stop", "answer_now"])
            counts[action] += 1
            if not w.controller.send(f"Turn {turn}: think about it."):
                print(f"turn {turn}: the message was refused")
                return 1
            if action != "limit":
                until = time.monotonic() + rng.uniform(0.0, 0.3)
                pump_until(lambda: time.monotonic() > until, 2)  # noqa: B023 - used at once
                (w.controller.stop if action == "stop" else w.controller.answer_now)()
            if not pump_until(lambda: not w.controller.busy, 60):
                print(f"turn {turn}: still busy after 60 s ({action})")
                return 1
            if turn == 19:
                pump_until(lambda: False, 0.5)
                warm = (rss(os.getpid()), rss(client.pid))
                meter.reset()
        elapsed = time.monotonic() - t0
        pump_until(lambda: False, 0.5)
        end = (rss(os.getpid()), rss(client.pid))
        assert warm is not None
        print(f"{turns} turns in {elapsed:.0f} s ({counts['limit']} to the limit, "
              f"{counts['stop']} stopped, {counts['answer_now']} answered now)")  # fmt: skip
        for name, a, b in (("GUI", warm[0], end[0]), ("engine", warm[1], end[1])):
            print(f"{name:>7} memory after warm-up {a / MB:7.1f} MB, at the end {b / MB:7.1f} MB, "
                  f"growth {(b - a) / MB:+6.1f} MB")  # fmt: skip
        print(f"longest GUI stall after warm-up {meter.longest * 1000:.1f} ms, "
              f"stalls over 50 ms: {meter.over_50ms}")  # fmt: skip
        saved = w.store.conversations()
        print(f"{len(saved)} conversations saved")
        w.close()
        w.store.close()
    del app
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    return run(max(args.turns, 21), args.seed)


if __name__ == "__main__":
    sys.exit(main())
